// Screenshots of the notebook views (docs/notebooks.md), from the pages scripts/notebook_views.py writes:
//   python scripts/notebook_views.py /tmp/nbviews && HTML_DIR=/tmp/nbviews node e2e/notebook-docs.mjs
// PNGs go to SCREENSHOT_DIR (see browser.mjs), JPEGs to OUT (default ../docs/images). Each view is
// also opened in a dark page and with JavaScript off, and the attention view's hover is checked.
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SHOTS, launchChromium } from "./browser.mjs";

const DIR = resolve(process.env.HTML_DIR ?? "/tmp/nbviews");
const OUT = process.env.OUT ?? "../docs/images";
mkdirSync(OUT, { recursive: true });
const url = (name) => pathToFileURL(`${DIR}/${name}.html`).href;
const browser = await launchChromium();
const errors = [];

async function open(name, javaScriptEnabled = true) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, javaScriptEnabled });
  page.on("console", (m) => m.type() === "error" && errors.push(`${name}: ${m.text()}`));
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(url(name));
  return page;
}

async function shot(page, name, jpeg) {
  const card = page.locator(".ms-nb").first();
  await card.screenshot({ path: `${SHOTS}/notebook-${name}.png` });
  if (jpeg) await card.screenshot({ path: `${OUT}/notebook-${name}.jpg`, type: "jpeg", quality: 80 });
  console.log(`notebook-${name}`);
}

for (const view of ["attribution", "patching", "lens"]) {
  const page = await open(view);
  await shot(page, view, true);
  await page.close();
  const dark = await open(`${view}-dark`);
  await shot(dark, `${view}-dark`, false);
  await dark.close();
}

// Attention: hovering a token makes it the query, repainting what it attends to.
const page = await open("attention");
const chips = page.locator(".ms-tokens .ms-tok");
const n = await chips.count();
if (!(await page.locator("select").isVisible()) || !(await page.locator(".ms-hint").isVisible())) throw new Error("the script did not show the head picker and its hint");
await chips.nth(5).hover();
const marked = await page.locator(".ms-tokens .ms-tok.ms-q").getAttribute("data-i");
if (marked !== "5") throw new Error(`hovering token 5 marked ${marked} as the query`);
const now = await page.locator(".ms-now").textContent();
if (!now.includes("query position 5")) throw new Error(`the caption says ${now}`);
// A key after the query gets no attention (causal): white.
const after = await chips.nth(n - 1).evaluate((e) => getComputedStyle(e).backgroundColor);
if (after !== "rgb(255, 255, 255)") throw new Error(`a later token is coloured ${after}`);
await page.locator("select").selectOption("2");
if (!(await page.locator(".ms-now").textContent()).startsWith("L5.H2")) throw new Error("head choice ignored");
await page.locator("select").selectOption("0");
await chips.nth(n - 1).hover();
await shot(page, "attention", true);
await page.close();
const still = await open("attention-dark", false);
if (await still.locator("select").isVisible()) throw new Error("the head picker shows without JavaScript");
await shot(still, "attention-nojs-dark", false);
await still.close();

if (errors.length) throw new Error(`console errors: ${errors.join(" | ")}`);
await browser.close();
