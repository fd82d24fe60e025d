// End-to-end test of the Maps page against a running `mechscope serve --dataset DIR` whose maps are
// computed (`mechscope maps DIR`; tests/integration/test_maps_e2e.py does both on a small corpus).
//   BASE_URL=http://127.0.0.1:8000 node e2e/maps.e2e.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step.
import { join } from "node:path";
import { BASE_URL, launchChromium, fail, steps, shot } from "./browser.mjs";

const TIMEOUT = 120_000;
const { step, run } = steps("e2e:maps");

/** The canvas is drawn with the points of the map, and no error shows. */
async function waitForMap(page, n) {
  await page.waitForSelector(`[data-testid="maps-canvas"][data-points="${n}"], [data-testid="error"], [data-testid="maps-status"]`);
  const err = await page.$('[data-testid="error"], [data-testid="maps-status"]');
  if (err) fail(`the map is not shown: ${(await err.innerText()).replace(/\s+/g, " ")}`);
}

/** Where data point (x, y) is on the page: the canvas states its transform (px = ox + x*s). */
async function screenOf(page, x, y) {
  const c = await page.$('[data-testid="maps-canvas"]');
  const box = await c.boundingBox();
  const [s, ox, oy] = (await c.getAttribute("data-transform")).split(",").map(Number);
  return [box.x + ox + x * s, box.y + oy + y * s];
}

/** Hover point `i`; returns the point the page says is hovered (the nearest, maybe a neighbour). */
async function hoverPoint(page, data, i) {
  const [px, py] = await screenOf(page, data.x[i], data.y[i]);
  await page.mouse.move(px, py);
  await page.waitForSelector('[data-testid="maps-tooltip"]');
  const j = Number(await page.getAttribute('[data-testid="maps-canvas"]', "data-hover"));
  if (j < 0) fail(`hovering point ${i} hovers nothing`);
  const [qx, qy] = await screenOf(page, data.x[j], data.y[j]);
  if (Math.hypot(qx - px, qy - py) > 8.5) fail(`the hovered point ${j} is ${Math.hypot(qx - px, qy - py)} px from the cursor`);
  return { j, px, py };
}

const api = (page, path) => page.evaluate((p) => fetch(p).then((r) => r.json()), path);
const params = (page) => new URL(page.url()).searchParams;

async function main() {
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
    page.setDefaultTimeout(TIMEOUT);
    const errors = [];
    let elsewhere = false; // pages opened from the map ask for their own data: not counted here
    page.on("console", (m) => m.type() === "error" && !elsewhere && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("response", (r) => r.status() >= 400 && !elsewhere && errors.push(`${r.status()} ${r.request().method()} ${r.url()}`));

    step(`open ${BASE_URL}/maps`);
    await page.goto(BASE_URL + "/maps");
    const model = await api(page, "/api/model");
    const units = await api(page, "/api/maps/units");
    if (units.status !== "ready") fail(`the units map is ${units.status}`);
    await waitForMap(page, units.x.length);
    if ((await page.getAttribute('[data-testid="nav-maps"]', "aria-current")) !== "page") fail("the top bar does not mark Maps as the page");
    if (!(await page.innerText('[data-testid="maps-info"]')).includes(`seed ${units.info.seed}`)) fail("the map's facts do not state its seed");
    step(`the units map shows ${units.x.length} points (${units.kinds.join(", ")}); ${units.info.seconds} s to compute`);
    await shot(page, "maps-units-layer.png");

    step("colour by kind: the legend names the kinds from /api/model");
    await page.selectOption('[data-testid="maps-color"]', "kind");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("color") === "kind");
    const legend = await page.innerText('[data-testid="maps-legend"]');
    for (const k of units.kinds) {
      const label = model.kinds.find((x) => x.name === k)?.label ?? k;
      if (!legend.includes(label)) fail(`the legend "${legend}" does not name ${label}`);
    }
    await shot(page, "maps-units-kind.png");

    step("search: a label dims the others and lands in the URL");
    await page.fill('[data-testid="maps-search"]', "L3.H");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("q") === "L3.H");
    const nHeads = units.kinds.includes("attn_head") ? units.kind.filter((k, i) => units.kinds[k] === "attn_head" && units.layer[i] === 3).length : 0;
    const matchText = await page.innerText('[data-testid="maps-matches"]');
    if (!matchText.startsWith(`${nHeads} of`)) fail(`search L3.H: "${matchText}", expected ${nHeads} layer-3 heads`);
    await shot(page, "maps-units-search.png");
    await page.fill('[data-testid="maps-search"]', "");
    await page.waitForFunction(() => !new URL(location.href).searchParams.has("q"));

    step("zoom with the wheel around the cursor, then pan by dragging: the view lands in the URL");
    const canvas = await (await page.$('[data-testid="maps-canvas"]')).boundingBox();
    const cx = canvas.x + canvas.width * 0.4, cy = canvas.y + canvas.height * 0.5;
    const t0 = (await page.getAttribute('[data-testid="maps-canvas"]', "data-transform")).split(",").map(Number);
    await page.mouse.move(cx, cy);
    for (let k = 0; k < 4; k++) await page.mouse.wheel(0, -300);
    await page.waitForFunction(() => new URL(location.href).searchParams.has("view"));
    const t1 = (await page.getAttribute('[data-testid="maps-canvas"]', "data-transform")).split(",").map(Number);
    if (!(t1[0] > t0[0] * 2)) fail(`the wheel did not zoom in: scale ${t0[0]} -> ${t1[0]}`);
    const under0 = [(cx - canvas.x - t0[1]) / t0[0], (cy - canvas.y - t0[2]) / t0[0]];
    const under1 = [(cx - canvas.x - t1[1]) / t1[0], (cy - canvas.y - t1[2]) / t1[0]];
    if (Math.hypot(under0[0] - under1[0], under0[1] - under1[1]) * t1[0] > 2) fail("the point under the cursor moved while zooming");
    const view1 = params(page).get("view");
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    await page.mouse.move(cx + 60, cy + 30, { steps: 6 });
    await page.mouse.up();
    await page.waitForFunction((v) => new URL(location.href).searchParams.get("view") !== v, view1);
    const t2 = (await page.getAttribute('[data-testid="maps-canvas"]', "data-transform")).split(",").map(Number);
    if (Math.abs(t2[1] - t1[1] - 60) > 1 || Math.abs(t2[2] - t1[2] - 30) > 1) fail(`the drag moved the map by ${t2[1] - t1[1]}, ${t2[2] - t1[2]} px, not 60, 30`);
    await shot(page, "maps-units-zoomed.png");
    step("a reload keeps the view");
    await page.reload();
    await waitForMap(page, units.x.length);
    const t3 = (await page.getAttribute('[data-testid="maps-canvas"]', "data-transform")).split(",").map(Number);
    if (Math.abs(t3[0] - t2[0]) / t2[0] > 1e-3 || Math.abs(t3[1] - t2[1]) > 1 || Math.abs(t3[2] - t2[2]) > 1) fail(`the reload moved the view: ${t2} -> ${t3}`);
    await page.click('[data-testid="maps-reset"]');
    await page.waitForFunction(() => !new URL(location.href).searchParams.has("view"));

    step("hover a unit: the tooltip and the side panel name it; a click opens its node page");
    const i = units.kind.findIndex((k, n) => units.kinds[k] === "attn_head" && n % 7 === 3);
    const { j, px, py } = await hoverPoint(page, units, i >= 0 ? i : 0);
    const label = `L${units.layer[j]}.`;
    if (!(await page.innerText('[data-testid="maps-tooltip"]')).includes(label)) fail(`the tooltip does not name ${label}`);
    const want = `/node/${encodeURIComponent(model.name)}/${units.kinds[units.kind[j]]}/${units.layer[j]}/${units.index[j]}`;
    const nodeHref = await page.getAttribute('[data-testid="maps-open-node"]', "href");
    if (nodeHref !== want) fail(`the side panel links ${nodeHref}, not ${want}`);
    await shot(page, "maps-units-hover.png");
    elsewhere = true;
    await page.mouse.click(px, py);
    await page.waitForFunction((w) => location.pathname === w, want);
    step(`clicked ${units.kinds[units.kind[j]]} L${units.layer[j]}.${units.index[j]} -> ${new URL(page.url()).pathname}`);
    await page.goBack();
    elsewhere = false;

    step("the prompts map");
    const prompts = await api(page, "/api/maps/prompts");
    if (prompts.status !== "ready") fail(`the prompts map is ${prompts.status}`);
    await page.click('[data-testid="maps-tab-prompts"]');
    await waitForMap(page, prompts.x.length);
    if (params(page).get("tab") !== "prompts") fail("the tab is not in the URL");
    step(`${prompts.x.length} windows`);
    await page.fill('[data-testid="maps-search"]', "the");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("q") === "the");
    const nThe = prompts.text.filter((t, n) => t.toLowerCase().includes("the") || prompts.title[n].toLowerCase().includes("the")).length;
    if (!(await page.innerText('[data-testid="maps-matches"]')).startsWith(`${nThe} of`)) fail(`the prompts search does not count ${nThe}`);
    await page.fill('[data-testid="maps-search"]', "");
    await page.waitForFunction(() => !new URL(location.href).searchParams.has("q"));
    const w = await hoverPoint(page, prompts, Math.floor(prompts.x.length / 2));
    const text = prompts.text[w.j];
    const snippet = text.slice(0, 30).trim();
    if (!(await page.innerText('[data-testid="maps-tooltip"]')).includes(snippet)) fail(`the tooltip does not show "${snippet}"`);
    const dbg = await page.getAttribute('[data-testid="maps-details"] [data-testid="open-in-debugger"]', "href");
    if (new URLSearchParams(dbg.split("?")[1]).get("prompt") !== text) fail(`the Debugger link ${dbg} does not carry the window's text`);
    await shot(page, "maps-prompts.png");
    elsewhere = true;
    await page.mouse.click(w.px, w.py);
    await page.waitForFunction(() => location.pathname === "/prompt");
    const q = params(page);
    if (q.get("prompt") !== text || q.get("pos") !== "0") fail(`the click opened ${page.url()}, not the explorer on window ${prompts.window_id[w.j]}`);
    step(`clicked window ${prompts.window_id[w.j]} -> /prompt?prompt=${JSON.stringify(text.slice(0, 40))}…&pos=0`);
    elsewhere = false;

    if (errors.length) fail(`console or HTTP errors:\n${errors.join("\n")}`);
    step("done");
  } finally {
    await browser.close();
  }
}

run(main);
