// End-to-end test of the prompt explorer (/prompt) against a running `mechscope serve --dataset DIR`
// on SmolLM2 (tests/integration/test_prompt_explorer_e2e.py collates a small titled corpus for it).
//   BASE_URL=http://127.0.0.1:8000 node e2e/prompt.e2e.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step
// and prompt-explorer.jpg (the picture of docs/prompt-explorer.md).
// PROMPT_SEARCH sets the corpus search (default "Roman Empire", a title of that corpus).
import { join } from "node:path";
import { BASE_URL, SHOTS, launchChromium, fail, steps, noError, shot } from "./browser.mjs";

const PROMPT = "The capital of France is Paris, and the capital of Italy is";
const SEARCH = process.env.PROMPT_SEARCH ?? "Roman Empire";
const TIMEOUT = 120_000;

const { step, run } = steps("e2e:prompt");

/** The grid for the URL's prompt and kind is drawn (not stale, not loading). */
async function waitForGrid(page, kind = "mlp_neuron") {
  await page.waitForFunction((k) => {
    if (document.querySelector('[data-testid="error"]')) return true;
    const v = document.querySelector('[data-testid="grid-view"]');
    const prompt = new URL(location.href).searchParams.get("prompt");
    return v?.dataset.stale === "false" && v.dataset.prompt === prompt && v.dataset.kind === k;
  }, kind, { timeout: TIMEOUT });
  await noError(page, "the grid");
}

const params = (page) => new URL(page.url()).searchParams;
const summary = (page) => page.$eval('[data-testid="grid-summary"]', (e) => ({ pos: Number(e.dataset.pos), sum: e.dataset.sum, top: e.dataset.top }));
/** What a layer's canvas shows, as pixels (the drawn data, not the DOM around it). */
const pixels = (page, row) => page.$eval(`[data-testid="layer-canvas"][data-row="${row}"]`, (c) => c.toDataURL());

async function expectPos(page, pos) {
  await page.waitForFunction((p) => document.querySelector('[data-testid="grid-summary"]')?.dataset.pos === String(p), pos);
  if (params(page).get("pos") !== String(pos)) fail(`the URL has pos=${params(page).get("pos")}, not ${pos}`);
  const on = await page.$eval('[data-testid="prompt-tokens"] .prompt-token.on', (e) => Number(e.dataset.pos));
  if (on !== pos) fail(`token ${on} is highlighted, not ${pos}`);
}

async function main() {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const problems = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(String(e)));
    page.on("response", (r) => r.status() >= 400 && problems.push(`${r.status()} ${r.request().method()} ${r.url()}`));

    // 1. The page from a link another page writes (prompt and pos): one request, 30 layers.
    let gridRequests = 0;
    page.on("request", (r) => r.url().endsWith("/api/prompt/grid") && gridRequests++);
    await page.goto(`${BASE_URL}/prompt?${new URLSearchParams({ prompt: PROMPT, pos: "3" })}`);
    await waitForGrid(page);
    const rows = await page.$$('[data-testid="grid-row"]');
    if (rows.length !== 30) fail(`${rows.length} layer rows, expected SmolLM2's 30`);
    const nTokens = (await page.$$('[data-testid="prompt-tokens"] .prompt-token')).length;
    if (nTokens < 10) fail(`only ${nTokens} tokens shown`);
    await expectPos(page, 3);
    const lens = await page.$$eval('[data-testid="lens-cell"]', (xs) => xs.map((x) => x.textContent ?? ""));
    if (lens.length !== 30 || lens.some((t) => !t.includes("%"))) fail(`the logit lens column is incomplete: ${lens.slice(0, 3)}`);
    const s3 = await summary(page);
    step(`grid of 30 layers x ${nTokens} tokens at token 3 (${s3.top}, Σ|a| ${s3.sum}) -> ${await shot(page, "prompt-01-grid.png")}`);

    // 2. The slider changes the grid: the summary and the drawn pixels follow it; no new request.
    const before = { r0: await pixels(page, 0), r20: await pixels(page, 20) };
    await page.focus('[data-testid="pos-slider"]');
    await page.keyboard.press("ArrowRight");
    await expectPos(page, 4);
    const s4 = await summary(page);
    if (s4.sum === s3.sum) fail(`the grid's summary did not change with the slider (${s4.sum})`);
    const after = { r0: await pixels(page, 0), r20: await pixels(page, 20) };
    if (after.r0 === before.r0 && after.r20 === before.r20) fail("the canvases drew the same pixels at tokens 3 and 4");
    step(`slider 3 -> 4: Σ|a| ${s3.sum} -> ${s4.sum}, top ${s3.top} -> ${s4.top}, canvases redrawn`);

    // 3. Arrow keys anywhere on the page (not in a text field) move along the tokens.
    await page.click(".page-head h2");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowRight");
    await expectPos(page, 6);
    await page.keyboard.press("ArrowLeft");
    await expectPos(page, 5);
    await page.keyboard.press("End");
    await expectPos(page, nTokens - 1);
    await page.keyboard.press("ArrowRight"); // past the end: stays
    await expectPos(page, nTokens - 1);
    if (gridRequests !== 1) fail(`moving along the prompt asked the server again (${gridRequests} grid requests)`);
    step(`arrow keys: 4 -> 6 -> 5, End -> ${nTokens - 1}; still one grid request`);

    // 4. Hover names a unit; a click picks it and fills the right pane.
    const canvas = await page.$('[data-testid="layer-canvas"][data-row="12"]');
    const box = await canvas.boundingBox();
    await page.mouse.move(box.x + 11, box.y + 5); // cell (5, 2) of 2-px cells: neuron 2 x 192 + 5
    await page.waitForFunction(() => /L12\.N389/.test(document.querySelector('[data-testid="grid-hover"]')?.textContent ?? ""));
    const hover = await page.textContent('[data-testid="grid-hover"]');
    await page.mouse.click(box.x + 11, box.y + 5);
    await page.waitForSelector('[data-testid="unit-panel"][data-unit="L12.N389"]');
    if (params(page).get("unit") !== "12.389") fail(`the URL has unit=${params(page).get("unit")}`);
    const acts = await page.$$eval('[data-testid="unit-acts"] [data-pos]', (xs) => xs.map((x) => Number(x.dataset.value)));
    if (acts.length !== nTokens || acts.some((v) => !Number.isFinite(v))) fail(`the unit's activation row has ${acts.length} values`);
    if (acts.every((v) => v === 0)) fail("the unit's activation is 0 at every token");
    const nodeHref = await page.getAttribute('[data-testid="unit-node-link"]', "href");
    if (!/^\/node\/[^/]+\/mlp_neuron\/12\/389\?/.test(nodeHref) || !nodeHref.includes(`token=${nTokens - 1}`)) fail(`node page link ${nodeHref}`);
    const dbg = await page.getAttribute('[data-testid="unit-debugger-link"]', "href");
    if (new URLSearchParams(dbg.slice(2)).get("prompt") !== PROMPT) fail(`the Debugger link ${dbg} does not carry the prompt`);
    await page.waitForSelector('[data-testid="unit-top-examples"] [data-testid="example"]', { timeout: TIMEOUT });
    const examples = await page.$$eval('[data-testid="unit-top-examples"] [data-testid="example"]', (xs) => xs.length);
    const coloured = await page.$$eval('[data-testid="unit-top-examples"] .ex-tok[style]', (xs) => xs.length);
    if (coloured === 0) fail("the top examples have no token coloured by activation");
    step(`hover "${hover.trim().slice(0, 60)}"; picked L12.N389: ${examples} top examples, links ${nodeHref.slice(0, 40)}… -> ${await shot(page, "prompt-02-unit.png")}`);
    await page.screenshot({ path: join(SHOTS, "prompt-explorer.jpg"), type: "jpeg", quality: 80, fullPage: false });

    // 5. Clicking a token of the unit's row moves the slider there.
    await page.click('[data-testid="unit-acts"] [data-pos="2"]');
    await expectPos(page, 2);
    step("a token of the unit's row moves the slider");

    // 6. Corpus search by title; a hit becomes the prompt and the grid reloads.
    await page.fill('[data-testid="corpus-search-input"]', SEARCH);
    await page.click('[data-testid="corpus-search-submit"]');
    await page.waitForSelector('[data-testid="corpus-hit"]', { timeout: TIMEOUT });
    const hits = await page.$$eval('[data-testid="corpus-hit"]', (xs) => xs.map((x) => x.textContent ?? ""));
    if (!hits.every((h) => h.includes(SEARCH))) fail(`a hit does not name "${SEARCH}": ${hits[0]}`);
    if (params(page).get("q") !== SEARCH) fail(`the URL has q=${params(page).get("q")}`);
    await shot(page, "prompt-03-search.png");
    await page.click('[data-testid="corpus-hit"] >> nth=0');
    await page.waitForFunction((p) => new URL(location.href).searchParams.get("prompt") !== p, PROMPT);
    await waitForGrid(page);
    const windowPrompt = params(page).get("prompt");
    const n2 = (await page.$$('[data-testid="prompt-tokens"] .prompt-token')).length;
    if (n2 === nTokens && windowPrompt === PROMPT) fail("the window did not become the prompt");
    await page.waitForSelector('[data-testid="unit-panel"][data-unit="L12.N389"]'); // the picked unit stays
    step(`search "${SEARCH}": ${hits.length} windows; picked one as the prompt (${n2} tokens) -> ${await shot(page, "prompt-04-window.png")}`);

    // 7. Another kind: attention heads, one block of 9 per layer.
    await page.selectOption('[data-testid="kind-select"]', "attn_head");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("kind") === "attn_head");
    await waitForGrid(page, "attn_head");
    const headRows = await page.$$('[data-testid="grid-row"]');
    const width = await page.$eval('[data-testid="layer-canvas"]', (c) => c.width);
    if (headRows.length !== 30 || width !== 9 * 16) fail(`${headRows.length} rows of ${width} px for heads`);
    if (await page.$('[data-testid="unit-panel"]')) fail("the neuron stayed picked after the kind changed");
    step(`heads: 30 rows of 9 cells -> ${await shot(page, "prompt-05-heads.png")}`);

    // 8. A reload keeps the view (prompt, kind, position, search).
    await page.keyboard.press("Home");
    await expectPos(page, 0);
    const url = page.url();
    await page.reload();
    await waitForGrid(page, "attn_head");
    if (page.url() !== url) fail(`the URL changed on reload: ${url} -> ${page.url()}`);
    await expectPos(page, 0);
    await page.waitForSelector('[data-testid="corpus-hit"]');
    step("reload keeps the prompt, kind, position and search");

    if (problems.length) fail(`console errors or failed requests:\n  ${problems.join("\n  ")}`);
    step("all steps passed");
  } finally {
    await browser.close();
  }
}

run(main);
