// What every browser script shares: where the server and the screenshots are, and Debian's
// Chromium driven by playwright-core (never a downloaded browser).
//   BASE_URL (default http://127.0.0.1:8000), SCREENSHOT_DIR (default ../ci-artifacts/screenshots
//   relative to web/), CHROMIUM (default /usr/bin/chromium)
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
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

/** A script's numbered steps (`[label] 3. msg`) and its exit: `run(main)` runs it and, on an
 * error, says at which step it failed and exits 1. */
export function steps(label) {
  let n = 0;
  return {
    step: (msg) => console.log(`[${label}] ${++n}. ${msg}`),
    run: (main) =>
      main().catch((e) => {
        console.error(`[${label}] FAILED at step ${n + 1}: ${e instanceof Error ? e.message : e}`);
        process.exit(1);
      }),
  };
}

export function fail(msg) {
  throw new Error(msg);
}

/** A full-page PNG in SHOTS; `park` moves the mouse to the corner first (no tooltip in the
 * picture), `top` scrolls to the top (sticky panels). Returns its path. */
export async function shot(page, name, { park = false, top = false } = {}) {
  if (park) await page.mouse.move(0, 0);
  if (top) await page.evaluate(() => window.scrollTo(0, 0));
  const path = join(SHOTS, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Fails when the page shows an error box. */
export async function noError(page, what) {
  const err = await page.$('[data-testid="error"]');
  if (err) fail(`${what} shows an error: ${(await err.innerText()).replace(/\s+/g, " ")}`);
}
