// End-to-end test of the Attention page against a running `mechscope serve` on the embedded SmolLM2
// (tests/integration/test_attention_e2e.py starts one).
//   BASE_URL=http://127.0.0.1:8000 node e2e/attention.e2e.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step
// and attention-doc.jpg, the picture of docs/attention.md.
// MIN_INDUCTION (default 0.5): the best induction score the grid must show on repeated tokens.
import { join } from "node:path";
import { BASE_URL, SHOTS, launchChromium, fail, steps, noError, shot as pageShot } from "./browser.mjs";

const shot = (page, name) => pageShot(page, name, { park: true, top: true }); // no tooltip in the pictures; the side panels are sticky

const TIMEOUT = 120_000;
const MIN_INDUCTION = Number(process.env.MIN_INDUCTION ?? 0.5);
const PROMPT = "The cat sat on the mat. The dog sat on the log. The cat sat on the";

const { step, run } = steps("e2e:attention");

const params = (page) => new URL(page.url()).searchParams;

async function waitFor(page, section) {
  await page.waitForSelector(`[data-testid="${section}"][data-stale="false"]`, { timeout: TIMEOUT });
}

/** The detector grids as drawn: { name: { best, cells: [{layer, head, score}] } }. */
const grids = (page) =>
  page.$$eval('[data-testid="detector-grid"]', (gs) =>
    Object.fromEntries(
      gs.map((g) => [
        g.dataset.detector,
        [...g.querySelectorAll('[data-testid="detector-cell"]')].map((c) => ({
          layer: Number(c.dataset.layer), head: Number(c.dataset.head), score: Number(c.dataset.score),
        })),
      ]),
    ),
  );

/** The single-head heatmap's cells as a (query, key) matrix. */
const heatmap = (page) =>
  page.$$eval('[data-testid="pattern-heatmap"] rect[data-q]', (rs) => {
    const m = [];
    for (const r of rs) {
      const q = Number(r.dataset.q);
      (m[q] ??= [])[Number(r.dataset.k)] = Number(r.dataset.v);
    }
    return m;
  });

async function main() {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const consoleErrors = [];
    let refusals = 0; // a 422 this test asks for on purpose (a dataset source without a dataset)
    page.on("console", (m) => m.type() === "error" && !/status of 422/.test(m.text()) && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    page.on("response", (r) => {
      if (r.status() === 422 && r.url().endsWith("/api/heads/detect") && refusals > 0) return;
      if (r.status() >= 400) consoleErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });

    // 1. The page alone: the detectors on 8 repeated random-token sequences.
    step(`open ${BASE_URL}/attention`);
    await page.goto(`${BASE_URL}/attention`);
    await waitFor(page, "detector-section");
    await page.waitForSelector('[data-testid="detector-grid"]');
    await noError(page, "the detectors");
    if ((await page.getAttribute('[data-testid="nav-attention"]', "aria-current")) !== "page") fail("the top bar does not mark Attention as the page");
    const g = await grids(page);
    const names = Object.keys(g);
    if (names.join() !== "previous_token,duplicate_token,induction,attention_sink") fail(`detector grids ${names}`);
    const layers = Number((await page.innerText('[data-testid="model-name"]')).match(/(\d+) layers/)[1]);
    const heads = Number((await page.innerText('[data-testid="model-name"]')).match(/(\d+) heads/)[1]);
    for (const [name, cells] of Object.entries(g)) {
      if (cells.length !== layers * heads) fail(`${name}: ${cells.length} cells, not ${layers} x ${heads}`);
      if (!cells.every((c) => c.score >= 0 && c.score <= 1)) fail(`${name} has a score outside [0, 1]`);
    }
    const best = (name) => g[name].reduce((a, b) => (b.score > a.score ? b : a));
    const ind = best("induction");
    const summary = names.map((n) => `${n} L${best(n).layer}.H${best(n).head} ${best(n).score.toFixed(3)}`).join(", ");
    if (ind.score <= MIN_INDUCTION) fail(`the best induction score is ${ind.score}, not above ${MIN_INDUCTION}`);
    const shown = await page.getAttribute('[data-testid="detector-grid"][data-detector="induction"] [data-testid="detector-best"]', "data-score");
    if (Math.abs(Number(shown) - ind.score) > 1e-4) fail(`the induction grid names its best as ${shown}, the cells say ${ind.score}`);
    step(`best heads: ${summary} -> ${await shot(page, "attention-01-detectors.png")}`);

    // 2. Hover: the head and its score.
    const cell = `[data-testid="detector-grid"][data-detector="induction"] [data-testid="detector-cell"][data-layer="${ind.layer}"][data-head="${ind.head}"]`;
    await page.hover(cell);
    const tip = await (await page.waitForSelector('[data-testid="attention-tip"]')).innerText();
    if (!tip.includes(`L${ind.layer}.H${ind.head}`) || !tip.includes(ind.score.toFixed(3))) fail(`the tooltip says ${JSON.stringify(tip)}`);
    step(`hover L${ind.layer}.H${ind.head}: ${JSON.stringify(tip.replace(/\s+/g, " "))}`);

    // 3. Click: that head's pattern on the detectors' first sequence, with the induction stripe.
    await page.click(cell);
    await page.waitForFunction((h) => new URL(location.href).searchParams.get("head") === String(h), ind.head);
    const p = params(page);
    if (p.get("src") !== "repeated" || p.get("layer") !== String(ind.layer)) fail(`the click opened ${page.url()}`);
    await page.waitForSelector(`[data-testid="pattern"][data-layer="${ind.layer}"][data-head="${ind.head}"]`);
    await waitFor(page, "pattern-section");
    await noError(page, "the pattern");
    const m = await heatmap(page);
    const r = 25;
    const n = m.length;
    if (n !== 2 * r + 1) fail(`the repeated sequence has ${n} tokens, not 1 + 2 x ${r}`);
    let stripe = 0;
    let diag = 0;
    for (let q = r + 1; q < n; q++) {
      stripe += m[q][q - (r - 1)];
      diag += m[q][q];
    }
    stripe /= r;
    diag /= r;
    const pageStripe = Number(await page.getAttribute('[data-testid="induction-stripe"]', "data-value"));
    if (stripe < 0.5) fail(`the induction head's stripe (offset ${r - 1}) holds ${stripe.toFixed(3)} of the attention, not > 0.5`);
    if (Math.abs(stripe - pageStripe) > 1e-3) fail(`the page's stripe ${pageStripe} is not the heatmap's ${stripe}`);
    const chips = await page.$$eval('[data-testid="sequence-tokens"] .tok', (xs) => xs.length);
    if (chips !== n) fail(`the sequence shows ${chips} tokens, not ${n}`);
    step(`L${ind.layer}.H${ind.head} on the repeated sequence: stripe ${stripe.toFixed(3)} (diagonal ${diag.toFixed(3)}) -> ${await shot(page, "attention-02-induction.png")}`);

    // 4. The lines view: hovering a query keeps its lines.
    const q = r + 5;
    await page.hover(`[data-testid="lines-query"] >> nth=${q}`);
    const lit = await page.$$eval("[data-testid=pattern-lines] line.lit", (ls) => ls.map((l) => [Number(l.dataset.q), Number(l.dataset.k)]));
    if (!lit.length || !lit.every(([lq]) => lq === q)) fail(`hovering query ${q} lit ${JSON.stringify(lit.slice(0, 5))}`);
    if (!lit.some(([, k]) => k === q - (r - 1))) fail(`query ${q}'s line to its induction key ${q - (r - 1)} is not drawn`);
    await page.screenshot({ path: join(SHOTS, "attention-03-lines-hover.png"), fullPage: true });
    step(`hover query ${q}: ${lit.length} lines lit, its induction key ${q - (r - 1)} among them`);

    // 5. The links: the head's node page (its kind from /api/model), the Debugger, the prompt explorer.
    const model = (await page.innerText('[data-testid="model-name"]')).split(" ")[0];
    const node = await page.getAttribute('[data-testid="node-page-link"]', "href");
    if (!node.startsWith(`/node/${encodeURIComponent(model)}/`) || !node.includes(`/${ind.layer}/${ind.head}?`)) fail(`node page link ${node}`);
    const dbg = await page.getAttribute('[data-testid="open-debugger"]', "href");
    const pe = await page.getAttribute('[data-testid="open-in-explorer"]', "href");
    if (!dbg.startsWith("/?prompt=") || !pe.startsWith("/prompt?prompt=") || !pe.includes(`pos=${n - 1}`)) fail(`links ${dbg} ${pe}`);
    step(`links: ${node.split("?")[0]}, Debugger, prompt explorer`);

    // 6. Every head of the layer as small multiples; a click opens one.
    await page.selectOption('[data-testid="head-select"]', "all");
    await page.waitForSelector('[data-testid="small-multiples"]');
    await waitFor(page, "pattern-section");
    const multiples = await page.$$('[data-testid="multiple"]');
    if (multiples.length !== heads) fail(`${multiples.length} small multiples, not ${heads}`);
    step(`all heads of layer ${ind.layer}: ${multiples.length} small multiples -> ${await shot(page, "attention-04-all-heads.png")}`);
    await page.click('[data-testid="multiple"][data-head="1"]');
    await page.waitForFunction(() => new URL(location.href).searchParams.get("head") === "1");
    await page.waitForSelector('[data-testid="pattern"][data-head="1"]');

    // 7. A prompt, and the detectors on it; a reload keeps the view.
    await page.click('[data-testid="use-prompt"]');
    await page.fill('[data-testid="attention-prompt"]', PROMPT);
    await page.click('[data-testid="attention-run"]');
    await page.waitForFunction((t) => new URL(location.href).searchParams.get("prompt") === t, PROMPT);
    await page.waitForFunction((t) => document.querySelector('[data-testid="pattern"]')?.dataset.text === t, PROMPT);
    await waitFor(page, "pattern-section");
    const tokens = await page.getAttribute('[data-testid="pattern"]', "data-length");
    await page.selectOption('[data-testid="detect-source"]', "prompt");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("det") === "prompt");
    await waitFor(page, "detector-section");
    await page.waitForSelector('[data-testid="detect-summary"]:has-text("1 sequence of")');
    await noError(page, "the detectors on the prompt");
    const url = page.url();
    await page.reload();
    await waitFor(page, "detector-section");
    await page.waitForSelector('[data-testid="pattern-section"][data-stale="false"] [data-testid="pattern"][data-head="1"]');
    if (page.url() !== url) fail(`the URL changed on reload: ${url} -> ${page.url()}`);
    if ((await page.inputValue('[data-testid="attention-prompt"]')) !== PROMPT) fail("the prompt did not survive the reload");
    step(`prompt (${tokens} tokens) with detectors on it; reload keeps it -> ${await shot(page, "attention-05-prompt.png")}`);

    // 8. The dataset source: its grid, or (no collated dataset) a 422 that says so.
    refusals = 1;
    await page.selectOption('[data-testid="detect-source"]', "dataset");
    await waitFor(page, "detector-section");
    const err = await page.$('[data-testid="detector-section"] [data-testid="error"]');
    if (err) {
      const msg = await err.innerText();
      if (!msg.includes("no collated dataset")) fail(`the dataset source's error is ${JSON.stringify(msg)}`);
      step("dataset source without a dataset: the 422 says so");
    } else {
      await page.waitForSelector('[data-testid="detect-summary"]');
      step("dataset source: grids on the dataset's windows");
    }

    // The picture of the docs: the induction head on its sequence, with the grids.
    await page.goto(`${BASE_URL}/attention?src=repeated&layer=${ind.layer}&head=${ind.head}`);
    await waitFor(page, "detector-section");
    await waitFor(page, "pattern-section");
    await page.waitForSelector('[data-testid="pattern"]');
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(SHOTS, "attention-doc.jpg"), type: "jpeg", quality: 80, fullPage: true });

    if (consoleErrors.length) fail(`console errors:\n  ${consoleErrors.join("\n  ")}`);
    step("all steps passed");
  } finally {
    await browser.close();
  }
}

run(main);
