// The Debugger's interventions, directions and verify panel in a real browser against `mechscope serve`
// (SmolLM2): an op picked in the intervention editor (scale) from the node table, a steering intervention
// added by hand along a neuron's write, the continuation without and with them side by side, the verify
// panel kept across a reload, and the log-prob and probe directions.
//   BASE_URL=http://127.0.0.1:8000 node e2e/debugger-interventions.e2e.mjs
// Writes PNGs (dbg-*.png) and debugger-interventions.jpg (the docs' picture) to SCREENSHOT_DIR.
import { join } from "node:path";
import { BASE_URL, SHOTS, launchChromium, fail, steps, shot as pageShot } from "./browser.mjs";

const shot = (page, name) => pageShot(page, name, { park: true }); // no tooltip in the pictures

const TIMEOUT = 60_000;
const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";
const NEURON = "L12.mlp_neuron.866@0"; // its write steers the residual stream (any neuron would do)

const { step } = steps("e2e:debugger-interventions");
async function settled(page, { paired }) {
  await page.waitForSelector('[data-testid="result"][data-stale="false"]', { timeout: TIMEOUT });
  if (paired) await page.waitForSelector('[data-testid="value-right"]', { timeout: TIMEOUT });
  const error = await page.$('[data-testid="error"]');
  if (error) fail(`the page shows an error: ${(await error.innerText()).replace(/\s+/g, " ")}`);
}

const value = async (page, id) => Number(await page.getAttribute(`[data-testid="${id}"]`, "data-value"));
const params = (page) => new URL(page.url()).searchParams;

/** Both continuations shown, fresh; returns the plain and steered texts and the diff line. */
async function generation(page) {
  await page.waitForSelector('[data-testid="gen-diff"]', { timeout: TIMEOUT });
  await page.waitForFunction(() => !document.querySelector(".dbg-gen-cols.stale"), null, { timeout: TIMEOUT });
  const text = (id) => page.innerText(`[data-testid="${id}"]`);
  return { plain: await text("gen-plain"), steered: await text("gen-steered"), diff: await text("gen-diff") };
}

const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(BASE_URL + DEMO);
  await settled(page, { paired: false });
  const left = await value(page, "value-left");
  step(`demo loaded, logit diff ${left.toFixed(3)}`);

  // 1. "edit" on the top neuron row: the editor opens on that node with scale; a bad factor is refused inline.
  const row = await page.$('[data-testid="node-table"] tr[data-kind="mlp_neuron"]');
  const label = await row.getAttribute("data-label");
  await (await row.$('[data-testid="edit-iv"]')).click();
  await page.waitForSelector('[data-testid="iv-editor"]');
  if ((await page.inputValue('[data-testid="iv-op"]')) !== "scale") fail("the editor did not open on the scale op");
  await page.fill('[data-testid="iv-factor"]', "twice");
  const err = await page.innerText('[data-testid="iv-error"]');
  if (!err.includes("factor")) fail(`no inline error for a bad factor: ${err}`);
  if (!(await page.isDisabled('[data-testid="iv-save"]'))) fail("Add is enabled with a bad factor");
  await page.fill('[data-testid="iv-factor"]', "-3");
  await page.click('[data-testid="iv-save"]');
  await settled(page, { paired: true });
  const ivs = JSON.parse(params(page).get("iv") ?? "[]");
  if (ivs.length !== 1 || ivs[0].op.kind !== "scale" || ivs[0].op.factor !== -3) fail(`the URL holds ${JSON.stringify(ivs)}`);
  const listed = await page.innerText('[data-testid="interventions"]');
  if (!listed.includes("scale×-3")) fail(`the interventions list shows ${listed}`);
  const right = await value(page, "value-right");
  if (right === left) fail("scaling the neuron did not change the value");
  const g1 = await generation(page);
  step(`scaled ${label} by -3 from the editor: ${left.toFixed(3)} -> ${right.toFixed(3)}; generation: ${g1.diff} -> ${await shot(page, "dbg-01-scale.png")}`);

  // 2. "+ add": steer the residual stream at layer 10 along the neuron's write, by hand.
  await page.click('[data-testid="iv-add"]');
  await page.waitForSelector('[data-testid="iv-editor"]');
  await page.selectOption('[data-testid="iv-target"]', "residual");
  await page.fill('[data-testid="iv-layer"]', "10");
  await page.selectOption('[data-testid="iv-op"]', "steer");
  await page.fill('[data-testid="iv-coefficient"]', "40");
  await page.fill('[data-testid="iv-node"]', NEURON);
  await page.click('[data-testid="iv-save"]');
  await settled(page, { paired: true });
  if (JSON.parse(params(page).get("iv") ?? "[]").length !== 2) fail("the steering intervention is not in the URL");
  const g2 = await generation(page);
  if (!g2.diff.includes("They part")) fail(`steering did not change the continuation: ${g2.diff}`);
  const marked = await page.$$('[data-testid="gen-steered"] .dbg-gen-first-diff');
  if (marked.length !== 1) fail(`${marked.length} first-difference marks in the steered continuation`);
  step(`steered along ${NEURON}'s write x40 at L10: "${g2.plain.slice(0, 40)}…" vs "${g2.steered.slice(0, 40)}…" (${g2.diff}) -> ${await shot(page, "dbg-02-steer.png")}`);
  // "edit" on the list's steering entry reopens the editor on it (the docs' picture), then cancel.
  await (await page.$$('[data-testid="iv-edit"]'))[1].click();
  await page.waitForSelector('[data-testid="iv-editor"]');
  if ((await page.inputValue('[data-testid="iv-op"]')) !== "steer" || (await page.inputValue('[data-testid="iv-coefficient"]')) !== "40")
    fail("editing the steering intervention did not reopen it");
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(SHOTS, "debugger-interventions.jpg"), type: "jpeg", quality: 80, fullPage: true });
  step(`"edit" reopens the steering intervention in the editor -> ${await shot(page, "dbg-02b-edit.png")}`);
  await page.click('[data-testid="iv-editor"] button.link');

  // 3. Verify, top 10; a reload keeps the panel, its N, the interventions and the generation.
  await page.click('[data-testid="verify-button"]');
  await page.waitForSelector('[data-testid="pearson"]', { timeout: TIMEOUT });
  await page.fill('[data-testid="verify-top-n"]', "10");
  await page.waitForFunction(() => new URL(location.href).searchParams.get("verify") === "10");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="verify"] tbody tr').length === 10, null, { timeout: TIMEOUT });
  const pearson = await page.innerText('[data-testid="pearson"]');
  await page.reload();
  await settled(page, { paired: true });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="verify"] tbody tr').length === 10, null, { timeout: TIMEOUT });
  if ((await page.innerText('[data-testid="pearson"]')) !== pearson) fail("the verify result changed across the reload");
  if ((await page.inputValue('[data-testid="verify-top-n"]')) !== "10") fail("the verify panel lost its top N");
  const g3 = await generation(page);
  if (g3.steered !== g2.steered) fail("the steered generation changed across the reload");
  step(`verify top 10 (Pearson ${pearson}) survives a reload with both interventions -> ${await shot(page, "dbg-03-verify-reload.png")}`);

  // 4. Directions: the log-prob of a continuation, then a probe (the neuron's write at layer 20).
  await page.goto(BASE_URL + DEMO);
  await settled(page, { paired: false });
  await page.click('[data-testid="dir-logprob"]');
  await page.fill('[data-testid="dir-continuation"]', " Mary");
  await page.click('[data-testid="submit"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent?.includes("log-prob"), null, { timeout: TIMEOUT });
  await settled(page, { paired: false });
  const lp = await value(page, "value-left");
  if (!(lp < 0)) fail(`a log-prob of ${lp}`);
  step(`log-prob of " Mary": ${lp.toFixed(3)} -> ${await shot(page, "dbg-04-logprob.png")}`);
  await page.click('[data-testid="dir-probe"]');
  await page.fill('[data-testid="dir-layer"]', "20");
  await page.fill('[data-testid="dir-node"]', NEURON);
  await page.click('[data-testid="submit"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent?.includes("probe"), null, { timeout: TIMEOUT });
  await settled(page, { paired: false });
  if (params(page).get("probe_node") !== NEURON) fail(`the URL holds probe_node=${params(page).get("probe_node")}`);
  step(`probe ${NEURON}'s write at L20: ${(await value(page, "value-left")).toFixed(3)} -> ${await shot(page, "dbg-05-probe.png")}`);
  // A pasted vector of the wrong size is refused before any request.
  await page.click('[data-testid="dir-source-vector"]');
  await page.fill('[data-testid="dir-vector"]', "1, 2, 3");
  await page.click('[data-testid="submit"]');
  const alert = await page.innerText('[role="alert"]');
  if (!alert.includes("d_model is 576")) fail(`no size error for a 3-entry probe: ${alert}`);
  step(`a 3-entry probe is refused inline: ${alert.replace(/\s+/g, " ").slice(0, 80)}`);
} catch (e) {
  const pages = browser.contexts().flatMap((c) => c.pages());
  if (pages[0]) console.log(`[e2e:debugger-interventions] failed at ${pages[0].url()} -> ${await shot(pages[0], "dbg-failure.png")}`);
  throw e;
} finally {
  await browser.close();
}
