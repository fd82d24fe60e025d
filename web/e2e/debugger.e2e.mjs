// End-to-end test of the Debugger, the node pages and the dataset explorer against a running `mechscope serve` (SmolLM2)
// that serves a collated dataset (`mechscope collate`, then `serve --dataset DIR`).
//   BASE_URL=http://127.0.0.1:8000 node e2e/debugger.e2e.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step.
import { join } from "node:path";
import { BASE_URL, SHOTS, launchChromium, fail, steps, noError, shot } from "./browser.mjs";

const TIMEOUT = 60_000;
const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";

const { step, run } = steps("e2e");

/** The result is shown and not loading (the previous one may be dimmed while loading). */
async function waitForResult(page, { paired }) {
  await page.waitForSelector('[data-testid="result"][data-stale="false"]', { timeout: TIMEOUT });
  if (paired) await page.waitForSelector('[data-testid="value-right"]', { timeout: TIMEOUT });
  const error = await page.$('[data-testid="error"]');
  if (error) fail(`the page shows an error: ${(await error.innerText()).replace(/\s+/g, " ")}`);
}

const value = async (page, id) => {
  const v = await page.getAttribute(`[data-testid="${id}"]`, "data-value");
  if (v === null || v === "" || Number.isNaN(Number(v))) fail(`no numeric ${id} on the page (got ${v})`);
  return Number(v);
};

const modelName = async (page) => (await page.innerText('[data-testid="model-name"]')).split(" ")[0];

/** Top examples from the collated dataset (the test serves a real one): at least one line. */
async function topExamples(page) {
  await page.waitForSelector('[data-testid="top-examples"] [data-testid="example"]', { timeout: TIMEOUT });
  return page.$$('[data-testid="top-examples"] [data-testid="example"]');
}

const here = (page) => { const u = new URL(page.url()); return decodeURIComponent(u.pathname) + u.search; };

async function nodePages(page, model) {
  // From the Debugger's node table to a head's page, in the canonical form that names the model.
  const open = await page.$('[data-testid="node-table"] tr[data-kind="attn_head"] [data-testid="open-node"]');
  await open.click();
  await page.waitForSelector('[data-testid="node-activations"]', { timeout: TIMEOUT });
  await noError(page, "the head page");
  if (!here(page).startsWith(`/node/${model}/attn_head/`)) fail(`the node table opened ${here(page)}, not /node/${model}/attn_head/...`);
  const examples = await topExamples(page);
  if (!(await page.$('[data-testid="node-nav"]'))) fail("the node page has no previous/next navigation");
  await page.waitForSelector('[data-testid="prompt-tokens-out"] [data-testid="promoted"] tr', { timeout: TIMEOUT });
  step(`head page ${here(page)}: ${examples.length} top examples, the head's tokens on the prompt -> ${await shot(page, "04-head-page.png")}`);

  // The from/to view of the head's top example: a query x key heatmap with the peak row and its strongest key.
  const first = examples[0];
  const n = await first.$$eval(".ex-tok", (xs) => xs.length);
  const peak = await first.$eval(".ex-tok.peak", (x) => [...x.parentElement.children].indexOf(x));
  await (await first.$('[data-testid="pattern-toggle"]')).click();
  await first.waitForSelector('[data-testid="pattern-svg"]', { timeout: TIMEOUT });
  await noError(page, "the from/to view");
  const cells = await first.$$eval('[data-testid="pattern-svg"] rect[data-q]', (xs) => xs.length);
  if (cells !== (n * (n + 1)) / 2) fail(`the from/to view has ${cells} cells for ${n} tokens, not ${(n * (n + 1)) / 2}`);
  const qy = await first.$eval('[data-testid="pattern-query"]', (r) => r.getAttribute("y"));
  const peakY = await first.$eval(`rect[data-q="${peak}"][data-k="0"]`, (r) => r.getAttribute("y"));
  if (qy !== peakY) fail(`the marked query row is not the example's peak ${peak}`);
  if (!(await first.$('[data-testid="pattern-key"]'))) fail("the from/to view marks no strongest key");
  await first.waitForSelector('[data-testid="pattern-output"] [data-testid="promoted"] tr');
  await page.mouse.move(0, 0); // no hover outline in the pictures
  await first.screenshot({ path: join(SHOTS, "05-head-from-to-attention.png") });
  const keyAt = await first.$eval('[data-testid="pattern-key"]', (k) => k.getAttribute("x"));
  await (await first.$('button[aria-pressed="false"]:has-text("pair write")')).click();
  if (await first.$eval('[data-testid="pattern-key"]', (k) => k.getAttribute("x")) !== keyAt) fail("the strongest key moved with the colour mode");
  await page.mouse.move(0, 0);
  await first.screenshot({ path: join(SHOTS, "05-head-from-to-write.png") });
  step(`from/to view of the top example: ${n} tokens, ${cells} cells, peak query ${peak} marked -> ${await shot(page, "05-head-page-from-to.png")}`);

  // A neuron's page without a prompt: examples and its weight tokens, no on-prompt part.
  const neuron = `/node/${encodeURIComponent(model)}/mlp_neuron/12/866`;
  await page.goto(BASE_URL + neuron);
  await page.waitForSelector('[data-testid="weight-tokens"] [data-testid="promoted"] tr', { timeout: TIMEOUT });
  const neuronExamples = await topExamples(page);
  await noError(page, "the neuron page");
  if (await page.$('[data-testid="on-prompt"]')) fail("the neuron page shows an on-prompt part without a prompt");
  const promoted = await page.$$eval('[data-testid="weight-tokens"] [data-testid="promoted"] tr', (xs) => xs.map((x) => x.dataset.token));
  step(`neuron page ${here(page)}: ${neuronExamples.length} top examples, promoted ${JSON.stringify(promoted.slice(0, 3))} -> ${await shot(page, "06-neuron-page.png")}`);

  // The prompt form: j/k/l typed into it stay text; Run sets ?prompt=&token=<last>; a click moves the token.
  const text = "Jack likes the risk of a fire";
  await page.fill('[data-testid="prompt-input"]', "");
  await page.type('[data-testid="prompt-input"]', text);
  if (here(page) !== `/node/${model}/mlp_neuron/12/866`) fail(`typing into the prompt navigated to ${here(page)}`);
  await page.click('[data-testid="prompt-run"]');
  await page.waitForSelector('[data-testid="node-activations"]', { timeout: TIMEOUT });
  await noError(page, "the neuron on the prompt");
  const chips = await page.$$('[data-testid="node-activations"] button');
  const q = new URL(page.url()).searchParams;
  if (q.get("prompt") !== text || Number(q.get("token")) !== chips.length - 1) fail(`Run set ${page.url()}, not the prompt at its last token ${chips.length - 1}`);
  await chips[3].click();
  await page.waitForFunction(() => new URL(location.href).searchParams.get("token") === "3");
  await page.waitForSelector('[data-testid="node-activations"] button[data-position="3"][aria-pressed="true"]', { timeout: TIMEOUT });
  step(`prompt form: ${chips.length} tokens, moved to token 3 -> ${await shot(page, "07-neuron-on-prompt.png")}`);
  await page.keyboard.press("k");
  await page.waitForFunction(() => location.pathname.endsWith("/mlp_neuron/12/867"));
  if (new URL(page.url()).searchParams.get("prompt") !== text) fail("k lost the prompt");
  step(`key k (focus on a token button) moved to ${here(page)}, keeping the prompt`);

  // The model-less path is the same page; a link for another model says so.
  await page.goto(BASE_URL + "/node/mlp_neuron/12/866");
  await page.waitForSelector('[data-testid="weight-tokens"] [data-testid="promoted"] tr', { timeout: TIMEOUT });
  const same = await page.$$eval('[data-testid="weight-tokens"] [data-testid="promoted"] tr', (xs) => xs.map((x) => x.dataset.token));
  if (JSON.stringify(same) !== JSON.stringify(promoted)) fail("the model-less path shows another neuron's tokens");
  await topExamples(page);
  await page.goto(BASE_URL + "/node/Not-This-Model.Q8_0/mlp_neuron/12/866");
  const wrong = await page.waitForSelector('[data-testid="wrong-model"]', { timeout: TIMEOUT });
  const msg = await wrong.innerText();
  if (!msg.includes("Not-This-Model.Q8_0") || !msg.includes(model)) fail(`the wrong-model message does not name both models: ${msg}`);
  step(`model-less path renders the same neuron; another model's link names both -> ${await shot(page, "08-wrong-model.png")}`);
}

/** The dataset explorer: the top bar's link, a corpus search typed in, a token query by URL, a node link. */
async function explorer(page, model) {
  await page.click('[data-testid="nav-explore"]');
  await page.waitForSelector('[data-testid="suggestions"]', { timeout: TIMEOUT });
  if (here(page) !== "/explore") fail(`the top bar's Explore link opened ${here(page)}`);
  await page.keyboard.press("/");
  if (!(await page.$eval('[data-testid="search-form-input"]', (x) => x === document.activeElement))) fail("/ did not focus the search field");
  await page.keyboard.type("jazz");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => new URL(location.href).searchParams.get("q") === "jazz");
  await page.waitForSelector('[data-testid="search-hit"]', { timeout: TIMEOUT });
  await noError(page, "the corpus search");
  const marks = await page.$$eval('[data-testid="search-hit"] mark', (xs) => xs.map((x) => x.textContent));
  if (!marks.length || marks.some((m) => m.toLowerCase() !== "jazz")) fail(`the search marks ${JSON.stringify(marks)}, not "jazz"`);
  const chips = await page.$$eval('[data-testid="search-hit"] a[data-testid="node-link"]', (xs) => xs.map((x) => x.getAttribute("href")));
  if (!chips.length) fail("no search hit links a node");
  if (chips.some((h) => !h.startsWith(`/node/${encodeURIComponent(model)}/`))) fail(`search hit links not in the canonical form: ${chips}`);
  const hits = (await page.$$('[data-testid="search-hit"]')).length;
  step(`explorer search ${here(page)}: ${hits} windows, marks ${JSON.stringify(marks)}, ${chips.length} node chips -> ${await shot(page, "09-explore-search.png")}`);

  // Reload-safe: the URL alone runs the query; both queries side by side.
  await page.goto(BASE_URL + "/explore?token=+the&q=jazz");
  await page.waitForSelector('[data-testid="token-node"] a[data-testid="node-link"]', { timeout: TIMEOUT });
  await page.waitForSelector('[data-testid="search-hit"]', { timeout: TIMEOUT });
  await noError(page, "the token query");
  if ((await page.inputValue('[data-testid="token-form-input"]')) !== " the") fail("the token field does not show the URL's token");
  const rows = await page.$$eval('[data-testid="token-node"]', (xs) => xs.map((x) => x.dataset.label));
  const n = await page.$$eval('[data-testid="token-node"] td:nth-child(4)', (xs) => xs.map((x) => Number(x.textContent)));
  if (n.some((v, i) => i > 0 && v > n[i - 1])) fail(`the token table is not sorted by top examples: ${n}`);
  step(`explorer token ${here(page)}: ${rows.length} nodes, first ${rows.slice(0, 3).join(", ")} -> ${await shot(page, "10-explore-token.png")}`);

  // A node link opens its node page with its dataset examples.
  const link = await page.$('[data-testid="token-node"] a[data-testid="node-link"]');
  const href = await link.getAttribute("href");
  await link.click();
  await page.waitForFunction((h) => location.pathname === h, href);
  await topExamples(page);
  await noError(page, "the node page opened from the explorer");
  if (!here(page).startsWith(`/node/${model}/`)) fail(`the explorer link opened ${here(page)}`);
  step(`explorer link ${rows[0]} -> node page ${here(page)} -> ${await shot(page, "11-explore-to-node.png")}`);
  await page.goBack();
  await page.waitForSelector('[data-testid="token-node"]', { timeout: TIMEOUT });
  if (new URL(page.url()).searchParams.get("token") !== " the") fail("back from the node page lost the explorer's query");
}

async function main() {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(TIMEOUT);
    const consoleErrors = [];
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    // A console "Failed to load resource" names no URL: record which request failed.
    page.on("response", (r) => r.status() >= 400 && consoleErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`));

    step(`open ${BASE_URL}${DEMO}`);
    await page.goto(BASE_URL + DEMO);
    await waitForResult(page, { paired: false });

    const pinned = await page.$('[data-testid="candidates-left"] tr[data-token=" Mary"][data-role="target"]');
    if (!pinned) fail("the candidates table does not show ' Mary' pinned as a target");
    const firstRow = await page.getAttribute('[data-testid="candidates-left"] tbody tr:first-child', "data-token");
    if (firstRow !== " Mary") fail(`the first candidates row is ${JSON.stringify(firstRow)}, not ' Mary' (pinned)`);
    const left = await value(page, "value-left");
    if (!(left > 0)) fail(`the logit difference should be positive, got ${left}`);
    step(`result shown: ' Mary' pinned, value-left = ${left.toFixed(3)}, model ${await modelName(page)} -> ${await shot(page, "01-debugger.png")}`);

    const rows = await page.$$('[data-testid="node-table"] tr[data-testid="node-row"][data-kind="attn_head"]');
    if (rows.length === 0) fail("the node table has no attention-head rows");
    // The table is sorted by |total effect| (descending) by default: the first head row is the top one.
    const sortedCol = await page.getAttribute('[data-testid="node-table"] th[aria-sort="descending"]', "data-col");
    if (sortedCol !== "total_effect") fail(`the node table should be sorted by total effect, is sorted by ${sortedCol}`);
    const top = rows[0];
    const label = await top.getAttribute("data-label");
    await (await top.$('[data-testid="ablate"]')).click();
    step(`clicked ablate on the top attention-head row ${label}`);

    await page.waitForFunction(() => new URL(location.href).searchParams.getAll("ablate").length === 1);
    await waitForResult(page, { paired: true });
    const l2 = await value(page, "value-left");
    const r2 = await value(page, "value-right");
    const d2 = await value(page, "value-diff");
    if (Math.abs(l2 - left) > 1e-6) fail(`the left (baseline) value changed: ${left} -> ${l2}`);
    if (Math.abs(r2 - l2) < 1e-6) fail(`the right value ${r2} does not differ from the left ${l2}`);
    if (!(await page.$('[data-testid="pane-right"]'))) fail("no right pane");
    const ivText = await page.innerText('[data-testid="interventions"]');
    if (!ivText.includes(`zero ${label}`)) fail(`the interventions list does not show "zero ${label}"`);
    step(`side by side: left ${l2.toFixed(3)}, right ${r2.toFixed(3)}, diff ${d2.toFixed(3)} -> ${await shot(page, "02-ablated.png")}`);

    const url = page.url();
    await page.reload();
    await waitForResult(page, { paired: true });
    if (page.url() !== url) fail(`the URL changed on reload: ${url} -> ${page.url()}`);
    const l3 = await value(page, "value-left");
    const r3 = await value(page, "value-right");
    if (Math.abs(l3 - l2) > 1e-6 || Math.abs(r3 - r2) > 1e-6)
      fail(`reload gave other values: left ${l3} (was ${l2}), right ${r3} (was ${r2})`);
    step(`reload reproduces the view (left ${l3.toFixed(3)}, right ${r3.toFixed(3)}) -> ${await shot(page, "03-reloaded.png")}`);

    const model = await modelName(page);
    await nodePages(page, model);
    await explorer(page, model);

    if (consoleErrors.length) fail(`console errors:\n  ${consoleErrors.join("\n  ")}`);
    step("all steps passed");
  } finally {
    await browser.close();
  }
}

run(main);
