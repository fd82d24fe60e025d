// End-to-end test of the Patching and Lens pages against a running `mechscope serve` (the embedded
// SmolLM2 will do: tests/integration/test_patching_e2e.py starts it).
//   BASE_URL=http://127.0.0.1:8000 node e2e/patching.e2e.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step;
// DOCS_IMAGES (a folder, e.g. ../docs/images) also receives patching.jpg and lens.jpg.
import { join } from "node:path";
import { BASE_URL, launchChromium, fail, steps, noError, shot as pageShot } from "./browser.mjs";

const shot = (page, name) => pageShot(page, name, { park: true }); // no tooltip in the pictures

const TIMEOUT = 240_000;
const LENS_PROMPT = "The capital of France is";

const { step, run } = steps("e2e:patching");
const consoleErrors = [];
let retried = 0; // sweeps retried after the time limit's 422 (not a fault of the page: not counted)
const timedOut = (e) => e.includes("/api/patch/compare") || e.includes("status of 422");

async function docsImage(page, name) {
  if (!process.env.DOCS_IMAGES) return;
  await page.screenshot({ path: join(process.env.DOCS_IMAGES, name), type: "jpeg", quality: 80, fullPage: true });
}

const params = (page) => new URL(page.url()).searchParams;

async function waitForPatch(page, site) {
  const ready = `[data-testid="patch-results"][data-site="${site}"][data-stale="false"], [data-testid="error"]`;
  await page.waitForSelector(ready, { timeout: TIMEOUT });
  // An exact sweep is one forward per cell and layer: on a small CPU shared with other work it can
  // pass the server's max_job_seconds. That refusal names itself; retry it, twice at most.
  for (let i = 0; i < 2; i++) {
    const err = await page.$('[data-testid="error"]');
    if (!err || !(await err.innerText()).includes("max_job_seconds")) break;
    step(`(the ${site} sweep ran past max_job_seconds on this busy machine: retrying)`);
    retried += 1;
    await page.click('[data-testid="error"] button');
    await page.waitForSelector('[data-testid="error"]', { state: "detached" });
    await page.waitForSelector(ready, { timeout: TIMEOUT });
  }
  await noError(page, `patching ${site}`);
}

/** A map's grid, read back from its cells: values[row][col]. */
const grid = (page, method) => page.$$eval(`[data-testid="patch-map-${method}"] rect[data-row]`, (xs) => {
  const out = [];
  for (const x of xs) {
    const r = Number(x.dataset.row), c = Number(x.dataset.col);
    (out[r] ??= [])[c] = Number(x.dataset.value);
  }
  return out;
});
const argmax = (row) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);

async function waitForLens(page, stream) {
  await page.waitForSelector(`[data-testid="lens-results"][data-stream="${stream}"][data-stale="false"], [data-testid="error"]`, { timeout: TIMEOUT });
  await noError(page, `the ${stream} lens`);
}
const lensCells = (page) => page.$$eval('[data-testid="lens-grid"] .lens-cell', (xs) =>
  xs.map((x) => ({ layer: Number(x.dataset.layer), pos: Number(x.dataset.pos), top: x.dataset.top, id: Number(x.dataset.topId), p: Number(x.dataset.prob), text: x.innerText })));

async function patching(page, expectError) {
  // 1. The pair builder: the default IOI pair (Mary/John, the final clause's name swapped).
  await page.goto(`${BASE_URL}/`);
  await page.click('[data-testid="nav-patching"]');
  await page.waitForSelector('[data-testid="pair-builder"]');
  await page.click('[data-testid="pair-build"]');
  await waitForPatch(page, "resid_pre");
  const p = params(page);
  if (!p.get("clean")?.endsWith("John gave a drink to") || !p.get("corrupted")?.endsWith("Mary gave a drink to") || p.get("target") !== " Mary" || p.get("distractor") !== " John")
    fail(`the built pair in the URL: ${page.url()}`);
  const counts = [await page.innerText('[data-testid="patch-clean-count"]'), await page.innerText('[data-testid="patch-corrupted-count"]')];
  if (counts[0] !== counts[1] || !/^\d+ tokens$/.test(counts[0])) fail(`token counts ${counts}`);
  step(`IOI pair built (${counts[0]} each): ${p.get("clean")} / ${p.get("corrupted")}`);

  // 2. The residual-stream heatmap: strong at the swapped name early, at the last position late.
  const act = await grid(page, "activation");
  const est = await grid(page, "attribution");
  const changed = (await page.getAttribute('[data-testid="patch-results"]', "data-changed")).split(",").map(Number);
  const n = act[0].length, layers = act.length, last = n - 1;
  if (layers !== 30 || est.length !== 30 || est[0].length !== n) fail(`grid shapes ${layers}x${n}, ${est.length}x${est[0].length}`);
  for (const l of [0, 1, 2]) {
    const at = argmax(act[l]);
    if (!changed.includes(at) || act[l][at] < 0.8) fail(`layer ${l}: strongest at ${at} (${act[l][at]}), not the name at ${changed}`);
  }
  for (const l of [layers - 3, layers - 2, layers - 1]) {
    const at = argmax(act[l]);
    if (at !== last || act[l][at] < 0.8) fail(`layer ${l}: strongest at ${at} (${act[l][at]}), not the last position ${last}`);
  }
  const mid = act.findIndex((row) => argmax(row) === last);
  const corr = await page.innerText('[data-testid="patch-correlation"]');
  if (!/-?\d\.\d{3}/.test(corr)) fail(`correlation shown as ${corr}`);
  step(`resid_pre: layers 0-2 peak at the name (pos ${changed}), the last 3 at pos ${last}; the move happens at L${mid}; ${corr}`);

  // 3. Hover: both methods' values with the row and column labels.
  await page.hover(`[data-testid="patch-map-attribution"] rect[data-row="0"][data-col="${changed[0]}"]`);
  const hover = await page.innerText('[data-testid="patch-hover"]');
  if (!hover.startsWith("L0 · position") || !hover.includes("activation") || !hover.includes("attribution")) fail(`hover text: ${hover}`);
  step(`hover: ${hover}`);
  await shot(page, "patching-1-ioi-resid.png");
  await docsImage(page, "patching.jpg");

  // 4. A mismatched pair is flagged before it is sent.
  await page.fill('[data-testid="patch-corrupted"]', p.get("corrupted") + " again");
  await page.waitForSelector('[data-testid="patch-mismatch"]');
  if (!(await page.isDisabled('[data-testid="patch-run"]'))) fail("the Patch button is enabled with a mismatched pair");
  step(`mismatch flagged: ${await page.innerText('[data-testid="patch-mismatch"]')}`);
  await shot(page, "patching-2-mismatch.png");
  await page.fill('[data-testid="patch-corrupted"]', p.get("corrupted"));

  // 5. Heads: layer x head; a click opens the head's node page on the clean prompt.
  await page.selectOption('[data-testid="patch-site"]', "heads");
  await waitForPatch(page, "heads");
  const heads = await grid(page, "activation");
  if (heads.length !== 30 || heads[0].length !== 9) fail(`heads grid ${heads.length}x${heads[0].length}`);
  let best = { l: 0, h: 0, v: -Infinity };
  heads.forEach((row, l) => row.forEach((v, h) => v > best.v && (best = { l, h, v })));
  step(`heads: strongest L${best.l}.H${best.h} (${best.v.toFixed(3)})`);
  await shot(page, "patching-3-heads.png");
  expectError.node = true; // the node page asks for dataset examples this server has none of
  await page.click(`[data-testid="patch-map-activation"] rect[data-row="${best.l}"][data-col="${best.h}"]`);
  await page.waitForFunction(() => location.pathname.startsWith("/node/"));
  const nodeUrl = new URL(page.url());
  if (!nodeUrl.pathname.endsWith(`/${best.l}/${best.h}`) || nodeUrl.searchParams.get("token") !== String(last) || nodeUrl.searchParams.get("prompt") !== p.get("clean"))
    fail(`the head's link opened ${page.url()}`);
  step(`click: ${decodeURIComponent(nodeUrl.pathname)}?token=${last}`);
  await page.goBack();
  await waitForPatch(page, "heads");
  expectError.node = false;

  // 6. MLP out: a click opens the Debugger on the clean prompt with the same answer.
  await page.selectOption('[data-testid="patch-site"]', "mlp_out");
  await waitForPatch(page, "mlp_out");
  await shot(page, "patching-4-mlp.png");
  expectError.node = true;
  await page.click('[data-testid="patch-map-activation"] rect[data-row="0"][data-col="0"]');
  await page.waitForFunction(() => location.pathname === "/");
  const dbg = params(page);
  if (dbg.get("prompt") !== p.get("clean") || dbg.get("target") !== " Mary") fail(`the layer cell opened ${page.url()}`);
  step("click on an MLP cell: the Debugger on the clean prompt");
  await page.goBack();
  await waitForPatch(page, "mlp_out");
  expectError.node = false;

  // 7. Heads by position: the exact sweep is over this server's budget, so the estimate comes alone,
  // with the reason in place of the exact grid.
  await page.selectOption('[data-testid="patch-site"]', "heads_by_pos");
  await waitForPatch(page, "heads_by_pos");
  const byPos = await grid(page, "attribution");
  if (byPos.length !== 270 || byPos[0].length !== n) fail(`heads_by_pos grid ${byPos.length}x${byPos[0].length}`);
  const skipped = await page.$('[data-testid="patch-skipped"]');
  if (skipped) {
    const text = (await skipped.innerText()).replace(/\s+/g, " ");
    if (!text.includes("max_request_tokens")) fail(`heads_by_pos skipped without its reason: ${text}`);
    step(`heads_by_pos: 270 x ${n} estimate; exact sweep skipped: ${text.slice(0, 150)}…`);
  } else {
    step(`heads_by_pos: both 270 x ${n} grids`);
  }
  await shot(page, "patching-5-heads-by-pos.png");

  // 8. Repeated random tokens; a reload keeps the whole view.
  await page.selectOption('[data-testid="patch-site"]', "resid_pre");
  await page.click('[data-testid="pair-repeat"]');
  await page.fill('[data-testid="pair-length"]', "4");
  await page.fill('[data-testid="pair-seed"]', "3");
  await page.click('[data-testid="pair-build"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get("pair") === "repeat");
  await waitForPatch(page, "resid_pre");
  const rep = params(page);
  if (rep.get("length") !== "4" || rep.get("seed") !== "3" || !rep.get("target")) fail(`repeat pair URL ${page.url()}`);
  const repAct = await grid(page, "activation");
  await page.reload();
  await waitForPatch(page, "resid_pre");
  if (JSON.stringify(await grid(page, "activation")) !== JSON.stringify(repAct)) fail("the reload drew another grid");
  if ((await page.inputValue('[data-testid="pair-length"]')) !== "4") fail("the reload lost the builder's length");
  step(`repeated random tokens (target ${JSON.stringify(rep.get("target"))}); a reload keeps the view`);
  await shot(page, "patching-6-repeat.png");
}

async function lens(page) {
  // 1. The residual lens from the URL: layers x tokens; the final row's last cell is the model's prediction.
  await page.goto(`${BASE_URL}/lens?${new URLSearchParams({ prompt: LENS_PROMPT })}`);
  await waitForLens(page, "resid");
  let cells = await lensCells(page);
  const layers = Math.max(...cells.map((c) => c.layer)) + 1, n = Math.max(...cells.map((c) => c.pos)) + 1;
  if (layers !== 31 || cells.length !== layers * n) fail(`lens grid ${layers} x ${n} (${cells.length} cells)`);
  const next = await page.evaluate(async (prompt) => {
    const r = await fetch("/api/generate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_new_tokens: 1 }) });
    return (await r.json()).tokens[0];
  }, LENS_PROMPT);
  const final = cells.find((c) => c.layer === layers - 1 && c.pos === n - 1);
  if (final.id !== next.id) fail(`the final row's last cell is ${final.top} (${final.id}); the model predicts ${next.token} (${next.id})`);
  step(`resid lens: ${layers} rows x ${n} tokens; final row at the last token: ${JSON.stringify(final.top)} = the model's greedy next token`);
  await page.hover(`.lens-cell[data-layer="${layers - 1}"][data-pos="${n - 1}"]`);
  const hover = await page.innerText('[data-testid="lens-hover"]');
  if (!hover.includes("final") || (await page.$$('[data-testid="lens-hover"] .lens-hover-tok')).length !== 5) fail(`lens hover: ${hover}`);
  step(`hover: ${hover.replace(/\s+/g, " ")}`);
  await shot(page, "lens-1-resid.png");

  // 2. A target token colours every cell by its probability and rank.
  await page.fill('[data-testid="lens-target"]', final.top);
  await page.click('[data-testid="lens-run"]');
  await page.waitForFunction((id) => document.querySelector('[data-testid="lens-results"]')?.getAttribute("data-target") === String(id), final.id);
  await waitForLens(page, "resid");
  cells = await lensCells(page);
  const last = cells.find((c) => c.layer === layers - 1 && c.pos === n - 1);
  if (!last.text.includes("#0")) fail(`the target's rank at the final cell: ${last.text}`);
  step(`target ${JSON.stringify(final.top)}: rank 0 in the final cell, p=${last.p.toFixed(3)}`);
  await shot(page, "lens-2-target.png");
  await docsImage(page, "lens.jpg");

  // 3. The attention and MLP writes' direct logits: one row per layer; the state survives a reload.
  for (const stream of ["attn", "mlp"]) {
    await page.selectOption('[data-testid="lens-stream"]', stream);
    await waitForLens(page, stream);
    const c = await lensCells(page);
    if (Math.max(...c.map((x) => x.layer)) + 1 !== 30) fail(`${stream} lens rows`);
    if (params(page).get("stream") !== stream) fail(`stream not in the URL: ${page.url()}`);
    step(`${stream} lens: 30 rows; meaning: ${(await page.innerText('[data-testid="lens-meaning"]')).slice(0, 80)}…`);
    await shot(page, `lens-3-${stream}.png`);
  }
  await page.reload();
  await waitForLens(page, "mlp");
  if ((await page.inputValue('[data-testid="lens-target"]')) !== final.top) fail("the reload lost the target");
  // 4. A click colours by that cell's top token (as an id).
  await page.click('.lens-cell[data-layer="3"][data-pos="1"]');
  await page.waitForFunction(() => /^#\d+$/.test(new URL(location.href).searchParams.get("target") ?? ""));
  await waitForLens(page, "mlp");
  step(`reload keeps stream and target; a click targets ${params(page).get("target")}`);
}

async function main() {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const expectError = { node: false };
    const expected = () => expectError.node;
    page.on("console", (m) => m.type() === "error" && !expected() && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    page.on("response", (r) => r.status() >= 400 && !expected() && consoleErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`));
    await patching(page, expectError);
    await lens(page);
    const errors = retried ? consoleErrors.filter((e) => !timedOut(e)) : consoleErrors;
    if (errors.length) fail(`console errors:\n  ${errors.join("\n  ")}`);
    step("no console errors");
  } finally {
    await browser.close();
  }
}

run(main);
