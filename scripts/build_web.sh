#!/usr/bin/env bash
# Build mechscope's web app (web/) into src/mechscope/server/static, which `mechscope serve` serves.
# Needs Node.js (>= 20.19) and npm. Works from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/web"

command -v npm >/dev/null 2>&1 || { echo "build_web.sh: npm not found; install Node.js >= 20.19 first" >&2; exit 1; }
echo "==> installing the web app's exact dependencies (npm ci) in $root/web"
npm ci
echo "==> type-checking and building (npm run build) into $root/src/mechscope/server/static"
npm run build
echo "==> done: restart \`mechscope serve\` to serve the new build"
