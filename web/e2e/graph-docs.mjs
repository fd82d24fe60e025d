// The screenshots of docs/graphs.md, from a running `mechscope serve --sae transcoders` (SmolLM2):
//   BASE_URL=http://127.0.0.1:8000 OUT=../docs/images node e2e/graph-docs.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
import { mkdirSync } from "node:fs";
import { BASE_URL, launchChromium } from "./browser.mjs";

const OUT = process.env.OUT ?? "../docs/images";
mkdirSync(OUT, { recursive: true });
const paris = "The capital of France is";
const ioi = "When Mary and John went to the store, John gave a drink to";
const pinned = ["29_624_4", "29_397_4", "29_1118_4", "29_1800_4", "29_637_4", "14_1163_4", "0_254_3", "0_1729_1"];
const q = (prompt, o) => "/graph?" + new URLSearchParams({ prompt, ...o }).toString();
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
const errors = [];
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

async function shot(url, name, waits) {
  await page.goto(BASE_URL + url);
  await page.waitForSelector('[data-testid="graph"][data-stale="false"]', { timeout: 300_000 });
  for (const w of waits) await page.waitForSelector(w, { timeout: 300_000 });
  await page.waitForTimeout(300);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: `${OUT}/${name}`, fullPage: true, type: "jpeg", quality: 85 }); // the graphs are busy: PNG is 1-1.7 MB
  console.log(name);
}

await shot(q(paris, { target: " Paris", pinned: pinned.slice(0, 3).join(","), clicked: "14_1163_4" }), "graph-page.jpg",
  ['[data-testid="node-panel"]']);
await shot(q(paris, { target: " Paris", pinned: pinned.join(","), check: pinned.join(","), edge: "E_4649_3,29_1118_4" }),
  "graph-check.jpg", ['[data-testid="edge-heads"]', '[data-testid="check-panel"] .verify-body:not(.stale)']);
await shot(q(ioi, { target: " Mary", edge: "E_5099_1,31_5099_13", clicked: "31_5099_13" }), "graph-ioi.jpg",
  ['[data-testid="edge-heads"]']);
if (errors.length) throw new Error(`console errors: ${errors.join(" | ")}`);
await browser.close();
