// End-to-end check of explanations in the web app against a running `mechscope serve --dataset DIR`
// (SmolLM2, a collated dataset; "score my explanation" needs the local LLM backend):
//   BASE_URL=http://127.0.0.1:8000 node e2e/explanations.e2e.mjs
// 1. the Explain button stores a node's baseline explanation and the node page shows it with its scores;
// 2. "score my explanation" simulates it with the served model: one two-tone token per record token;
// 3. after explaining the units of the Debugger's table, its explanation column shows them with badges;
// 4. the explorer finds the node by its explanation's text.
// Kinds come from GET /api/model (never named here). Uses playwright-core with the system Chromium.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step.
import { join } from "node:path";
import { BASE_URL, SHOTS, launchChromium, fail, steps, shot } from "./browser.mjs";

const TIMEOUT = 60_000;
const SIMULATE_TIMEOUT = 300_000; // SmolLM2 simulating ~20 records on 2 CPU cores
const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";
const TABLE_UNITS = 12; // units of the Debugger's table explained through the API before it is shown

const { step, run } = steps("e2e");
async function api(path, body) {
  const res = await fetch(BASE_URL + path, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) fail(`${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function main() {
  const model = await api("/api/model");
  // A unit with a fixed write (promoted tokens): the first collated kind whose pages list weight tokens.
  const kind = model.kinds.find((k) => k.collated && k.weight_tokens) ?? fail("no collated kind with weight tokens");
  const status = await api("/api/dataset");
  if (status.status !== "done") fail(`the served dataset is not done (${status.status})`);
  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  try {
    // The Debugger first: its table's units are the ones explained.
    step("Debugger: run the IOI prompt");
    await page.goto(BASE_URL + DEMO);
    await page.waitForSelector('[data-testid="node-table"] [data-testid="node-row"]', { timeout: TIMEOUT });
    const debug = await api("/api/debug", { prompt: "When Mary and John went to the store, John gave a drink to", targets: [" Mary"], distractors: [" John"], k: 10 });
    const collated = new Set(model.kinds.filter((k) => k.collated).map((k) => k.name));
    const seen = new Map();
    for (const r of debug.left.nodes) {
      const n = r.node;
      if (collated.has(n.kind) && n.index != null) seen.set(`${n.kind}/${n.layer ?? 0}/${n.index}`, { kind: n.kind, layer: n.layer ?? 0, index: n.index });
    }
    const units = [...seen.values()].slice(0, TABLE_UNITS);
    if (units.length === 0) fail("the Debugger's table has no collated units");
    step(`explain ${units.length} of its units (POST /api/explanations/explain)`);
    for (const u of units) await api("/api/explanations/explain", u);
    await page.reload();
    await page.waitForSelector('[data-testid="node-table"] th[data-col="explanation"]', { timeout: TIMEOUT });
    const cells = await page.$$('[data-testid="explanation-cell"]');
    if (cells.length === 0) fail("no explanation cell in the node table");
    const badge = await page.$('[data-testid="explanation-cell"] [data-testid="score-badge"]');
    if (!badge) fail("no score badge in the explanation column");
    // A value with its n and interval, or "absent" with the reason (the baseline has no LLM scores).
    const title = (await badge.getAttribute("title")) ?? "";
    if (!/n = \d+|: absent \(.+\)/.test(title)) fail(`a badge's title gives neither n nor a reason: ${title}`);
    await page.$eval('[data-testid="node-table"]', (el) => el.scrollIntoView());
    await shot(page, "explanations-debugger-table.png");
    console.log(`[e2e]    ${cells.length} rows with an explanation`);

    const unit = units.find((u) => u.kind === kind.name) ?? { kind: kind.name, layer: Math.floor(model.n_layers / 2), index: 0 };
    const path = `/node/${encodeURIComponent(model.name)}/${unit.kind}/${unit.layer}/${unit.index}`;
    step(`node page ${path}: Explain (baseline)`);
    await page.goto(BASE_URL + path);
    await page.waitForSelector('[data-testid="explanation-section"]', { timeout: TIMEOUT });
    await page.click('[data-testid="explain-button"]');
    await page.waitForSelector('[data-testid="current-explanation"]', { timeout: TIMEOUT });
    const text = (await page.innerText('[data-testid="current-explanation"] .explanation-main')).trim();
    if (!text) fail("the explanation is empty");
    const scoreRows = await page.$$('[data-testid="scores"] tbody tr');
    if (scoreRows.length === 0) fail("no score rows");
    console.log(`[e2e]    "${text}" with ${scoreRows.length} scores`);

    step("score my explanation (the served model simulates; may take minutes on CPU)");
    const mine = process.env.EXPLANATION ?? text;
    await page.fill('[data-testid="score-mine-input"]', mine);
    const t0 = Date.now();
    await page.click('[data-testid="score-mine-submit"]');
    await page.waitForSelector('[data-testid="simulation"], [data-testid="score-mine"] [role="alert"]', { timeout: SIMULATE_TIMEOUT });
    const err = await page.$('[data-testid="score-mine"] [role="alert"]');
    if (err) fail(`score my explanation failed: ${(await err.innerText()).replace(/\s+/g, " ")}`);
    const summary = await page.innerText('[data-testid="sim-summary"]');
    const records = await page.$$('[data-testid="sim-record"]');
    if (records.length === 0) fail("no simulated records shown");
    // A record whose simulation failed shows the reason instead of its tokens (never zeros).
    const toks = await page.$$('[data-testid="sim-tok"]');
    const failed = await page.$$('[data-testid="sim-failure"]');
    if (toks.length === 0 && failed.length === 0) fail("records without tokens or a failure");
    console.log(`[e2e]    ${summary} · ${records.length} records, ${failed.length} failed, ${toks.length} tokens shown · ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await shot(page, "explanations-node-page-full.png");
    const section = await page.$('[data-testid="explanation-section"]');
    await section.screenshot({ path: join(SHOTS, "explanations-node-page.png") });

    step("explorer: search the explanation's text");
    const word = text.replace(/[^A-Za-z ]/g, " ").split(/\s+/).find((w) => w.length >= 4) ?? "fires";
    await page.goto(`${BASE_URL}/explore?expl=${encodeURIComponent(word)}`);
    await page.waitForSelector('[data-testid="explanation-hits"] [data-testid="explanation-hit"]', { timeout: TIMEOUT });
    console.log(`[e2e]    "${word}": ${(await page.$$('[data-testid="explanation-hit"]')).length} hits`);
    await shot(page, "explanations-search.png");
    console.log("[e2e] ok");
  } finally {
    await browser.close();
  }
}

run(main);
