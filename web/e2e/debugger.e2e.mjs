// End-to-end test of the Debugger page against a running `mechscope serve` (SmolLM2).
//   BASE_URL=http://127.0.0.1:8000 node e2e/debugger.e2e.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step.
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BASE_URL = (process.env.BASE_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");
const SHOTS = resolve(web, process.env.SCREENSHOT_DIR ?? "../ci-artifacts/screenshots");
const EXECUTABLE = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 60_000;
const DEMO = "/?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John";

mkdirSync(SHOTS, { recursive: true });
let stepNo = 0;
const step = (msg) => console.log(`[e2e] ${++stepNo}. ${msg}`);
const fail = (msg) => {
  throw new Error(msg);
};

async function shot(page, name) {
  const path = join(SHOTS, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

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

async function main() {
  const browser = await chromium.launch({
    executablePath: EXECUTABLE,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(TIMEOUT);
    const consoleErrors = [];
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));

    step(`open ${BASE_URL}${DEMO}`);
    await page.goto(BASE_URL + DEMO);
    await waitForResult(page, { paired: false });

    const pinned = await page.$('[data-testid="candidates-left"] tr[data-token=" Mary"][data-role="target"]');
    if (!pinned) fail("the candidates table does not show ' Mary' pinned as a target");
    const firstRow = await page.getAttribute('[data-testid="candidates-left"] tbody tr:first-child', "data-token");
    if (firstRow !== " Mary") fail(`the first candidates row is ${JSON.stringify(firstRow)}, not ' Mary' (pinned)`);
    const left = await value(page, "value-left");
    if (!(left > 0)) fail(`the logit difference should be positive, got ${left}`);
    const model = await page.innerText('[data-testid="model-name"]');
    step(`result shown: ' Mary' pinned, value-left = ${left.toFixed(3)}, model ${model.split(" ")[0]} -> ${await shot(page, "01-debugger.png")}`);

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

    const open = await page.$('[data-testid="node-table"] tr[data-kind="attn_head"] [data-testid="open-node"]');
    await open.click();
    await page.waitForSelector('[data-testid="node-activations"]', { timeout: TIMEOUT });
    const err = await page.$('[data-testid="error"]');
    if (err) fail(`the node page shows an error: ${await err.innerText()}`);
    // The dataset part shows either examples (a collated dataset is ready) or a sentence saying why not.
    await page.waitForSelector('[data-testid="top-examples"], [data-testid="dataset-status"]', { timeout: TIMEOUT });
    const examples = await page.$$('[data-testid="top-examples"] [data-testid="example"]');
    const dsStatus = examples.length ? null : await page.getAttribute('[data-testid="dataset-status"]', "data-status");
    if (!examples.length && !dsStatus) fail("the node page shows neither dataset examples nor the dataset status");
    if (!(await page.$('[data-testid="node-nav"]'))) fail("the node page has no previous/next navigation");
    const ds = examples.length ? `${examples.length} dataset examples` : `dataset ${dsStatus}`;
    step(`node page ${new URL(page.url()).pathname} (${ds}) -> ${await shot(page, "04-node-page.png")}`);

    if (consoleErrors.length) fail(`console errors:\n  ${consoleErrors.join("\n  ")}`);
    step("all steps passed");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`[e2e] FAILED at step ${stepNo + 1}: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
