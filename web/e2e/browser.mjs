// What every browser script shares: where the server and the screenshots are, and Debian's
// Chromium driven by playwright-core (never a downloaded browser).
//   BASE_URL (default http://127.0.0.1:8000), SCREENSHOT_DIR (default ../ci-artifacts/screenshots
//   relative to web/), CHROMIUM (default /usr/bin/chromium)
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const BASE_URL = (process.env.BASE_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");
export const SHOTS = resolve(web, process.env.SCREENSHOT_DIR ?? "../ci-artifacts/screenshots");
mkdirSync(SHOTS, { recursive: true });

/** Headless Chromium with the network features a test does not need turned off. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
