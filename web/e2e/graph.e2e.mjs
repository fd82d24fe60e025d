// End-to-end test of the Graph page against a running `mechscope serve --sae DIR` with transcoders
// (random ones will do: tests/integration/test_graph_e2e.py writes 30 for SmolLM2).
//   BASE_URL=http://127.0.0.1:8000 node e2e/graph.e2e.mjs
// Uses playwright-core with the system Chromium (/usr/bin/chromium); never downloads a browser.
// SCREENSHOT_DIR (default ../ci-artifacts/screenshots relative to web/) receives one PNG per step.
// GRAPH_PROMPT sets the prompt (default "The capital of France is").
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BASE_URL, launchChromium, fail, steps, noError, shot as pageShot } from "./browser.mjs";

const shot = (page, name) => pageShot(page, name, { park: true, top: true }); // no tooltip in the pictures; the side panels are sticky

const PROMPT = process.env.GRAPH_PROMPT ?? "The capital of France is";
const TIMEOUT = 240_000; // a graph takes seconds to minutes on a small CPU

const { step, run } = steps("e2e:graph");

/** The graph is drawn and not loading. */
async function waitForGraph(page) {
  await page.waitForSelector('[data-testid="graph"][data-stale="false"], [data-testid="error"]', { timeout: TIMEOUT });
  await noError(page, "the graph");
}

const params = (page) => new URL(page.url()).searchParams;
const nodes = (page, type) => page.$$eval(`[data-testid="graph-node"]${type ? `[data-type="${type}"]` : ""}`,
  (xs) => xs.map((x) => ({ key: x.dataset.key, pos: Number(x.dataset.pos), pinned: x.dataset.pinned === "true" })));
const edges = (page) => page.$$eval('[data-testid="graph-edge"]',
  (xs) => xs.map((x) => ({ key: x.dataset.edge, source: x.dataset.source, target: x.dataset.target, weight: Number(x.dataset.weight) })));

async function main() {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const consoleErrors = [];
    // The node page and the Debugger ask for dataset examples and explanations, which a server
    // without a collated dataset refuses (422): those are theirs, not this page's, and not counted.
    let elsewhere = false;
    page.on("console", (m) => m.type() === "error" && !elsewhere && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    page.on("response", (r) => r.status() >= 400 && !elsewhere && consoleErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`));

    // 1. The graph from the URL alone.
    const start = `/graph?${new URLSearchParams({ prompt: PROMPT })}`;
    step(`open ${BASE_URL}${start}`);
    await page.goto(BASE_URL + start);
    await waitForGraph(page);
    if ((await page.getAttribute('[data-testid="nav-graph"]', "aria-current")) !== "page") fail("the top bar does not mark Graph as the page");
    let latents = await nodes(page, "latent");
    if (!latents.length) {
      // Random transcoders leave no latent above the default node threshold: keep more nodes, from the form.
      await page.fill('[data-testid="graph-node-threshold"]', "0.99");
      await page.click('[data-testid="graph-run"]');
      await page.waitForFunction(() => new URL(location.href).searchParams.get("node_threshold") === "0.99");
      await waitForGraph(page);
      latents = await nodes(page, "latent");
      step(`no latent at the default node threshold: the form asked for 0.99 -> ${latents.length} latents`);
    }
    const tokens = await nodes(page, "token");
    const logits = await nodes(page, "logit");
    const links = await edges(page);
    const columns = await page.$$eval(".graph-svg .pos-label", (xs) => xs.length);
    if (!latents.length) fail("the graph has no latent");
    if (tokens.length < 2 || columns !== tokens.length) fail(`${tokens.length} token nodes for ${columns} columns`);
    if (!logits.length) fail("the graph has no logit");
    if (!links.length) fail("the graph has no link");
    for (const s of ["replacement", "completeness", "pruned_replacement", "pruned_completeness"]) {
      const v = Number(await page.getAttribute(`[data-testid="score-${s}"]`, "data-value"));
      if (!(v >= 0 && v <= 1)) fail(`score ${s} is ${v}, not in [0, 1]`);
    }
    step(`graph: ${latents.length} latents, ${tokens.length} tokens, ${logits.length} logits, ${links.length} links -> ${await shot(page, "graph-01-graph.png")}`);

    // 2. A tooltip on hover.
    const byInputs = latents
      .map((l) => ({ ...l, inputs: links.filter((e) => e.target === l.key) }))
      .sort((a, b) => b.inputs.length - a.inputs.length);
    // a latent fed from another position: an edge that attention heads carry
    const latent = byInputs.find((l) => l.inputs.some((e) => !e.source.startsWith("sn:") && posOf(e.source) !== l.pos)) ?? byInputs[0];
    const sel = (key) => `[data-testid="graph-node"][data-key="${key}"]`;
    await page.hover(sel(latent.key));
    const tip = await page.waitForSelector('[data-testid="graph-tooltip"]');
    if (!(await tip.innerText()).includes(latent.key)) fail(`the tooltip does not name ${latent.key}`);
    step(`hover on latent ${latent.key}: tooltip "${(await tip.innerText()).replace(/\s+/g, " ").slice(0, 80)}"`);

    // 3. A click: the side panel, the latent's node page.
    await page.click(sel(latent.key));
    await page.waitForFunction((k) => new URL(location.href).searchParams.get("clicked") === k, latent.key);
    const panel = await page.waitForSelector(`[data-testid="node-panel"][data-id="${latent.key}"]`);
    const model = (await page.innerText('[data-testid="model-name"]')).split(" ")[0];
    const href = await (await panel.$('[data-testid="node-page-link"]')).getAttribute("href");
    if (!href.startsWith(`/node/${encodeURIComponent(model)}/`) || !href.includes(`token=${latent.pos}`))
      fail(`the node page link ${href} is not the latent's on the prompt at ${latent.pos}`);
    const inputRows = await panel.$$('[data-testid="edges-inputs"] [data-testid="edge-row"]');
    const lit = await page.$$eval(".graph-edges .lit [data-testid=graph-edge]", (xs) => xs.length);
    if (!lit) fail("the clicked node's edges are not highlighted");
    // The latent's explanation and top examples, or (a server without a collated dataset: no request
    // for them, so no 422 counted above) one quiet line saying why.
    const part = await panel.waitForSelector('[data-testid="dataset-needed"], [data-testid="panel-top-examples"], [data-testid="latent-dataset-refused"], [data-testid="latent-dataset"] [data-testid="no-explanation"]');
    step(`the panel's dataset part: ${JSON.stringify((await part.innerText()).replace(/\s+/g, " ").slice(0, 120))}`);
    step(`clicked ${latent.key}: side panel with ${inputRows.length} input rows, ${lit} edges lit -> ${await shot(page, "graph-02-clicked.png")}`);
    elsewhere = true;
    await page.click('[data-testid="node-page-link"]');
    await page.waitForSelector('[data-testid="node-activations"]', { timeout: TIMEOUT });
    const chip = await page.$(`[data-testid="node-activations"] button[data-position="${latent.pos}"][aria-pressed="true"]`);
    if (!chip) fail(`the node page does not mark the latent's position ${latent.pos}`);
    step(`node page ${decodeURIComponent(new URL(page.url()).pathname)} renders the latent on the prompt at ${latent.pos}`);
    await page.goBack();
    await waitForGraph(page);
    elsewhere = false;
    await page.waitForSelector(`[data-testid="node-panel"][data-id="${latent.key}"]`);

    // 4. An edge: its heads and the Q/K trace links. Edges cross: click a point of one of the clicked
    // latent's input edges (from another position first) where no other edge or node lies on top.
    const inputs = [...latent.inputs].sort((a, b) => (posOf(a.source) === latent.pos) - (posOf(b.source) === latent.pos) || Math.abs(b.weight) - Math.abs(a.weight));
    if (!inputs.length) fail(`${latent.key} has no input edge`);
    const point = await page.evaluate((keys) => {
      for (const key of keys) {
        const line = document.querySelector(`[data-testid="graph-edge-hit"][data-edge="${key}"]`);
        if (!line) continue;
        line.scrollIntoView({ block: "center", inline: "center" });
        const [x1, y1, x2, y2] = ["x1", "y1", "x2", "y2"].map((a) => Number(line.getAttribute(a)));
        for (const t of [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8]) {
          const p = new DOMPoint(x1 + t * (x2 - x1), y1 + t * (y2 - y1)).matrixTransform(line.getScreenCTM());
          if (document.elementFromPoint(p.x, p.y)?.getAttribute("data-edge") === key) return { key, x: p.x, y: p.y };
        }
      }
      return null;
    }, inputs.map((e) => e.key));
    if (!point) fail(`no input edge of ${latent.key} can be clicked: other edges or nodes cover them all`);
    const edge = inputs.find((e) => e.key === point.key);
    await page.mouse.click(point.x, point.y);
    await page.waitForFunction((e) => new URL(location.href).searchParams.get("edge") === e, `${edge.source},${edge.target}`);
    await page.waitForSelector('[data-testid="edge-panel"] [data-testid="edge-heads"]', { timeout: TIMEOUT });
    await noError(page, "the edge's heads");
    const heads = await page.$$('[data-testid="head-row"]');
    const traces = await page.$$eval('[data-testid="trace-link"]', (xs) => xs.map((x) => x.getAttribute("href")));
    if (posOf(edge.source) !== latent.pos) {
      if (!heads.length) fail(`no head carries ${edge.key}, an edge between positions`);
      const t = new URLSearchParams(traces[0].slice(2));
      if (t.get("prompt") !== PROMPT || !t.get("trace") || t.get("through") !== "query_key") fail(`the trace link ${traces[0]} is not a Q/K trace of the prompt`);
    }
    step(`edge ${edge.key} (weight ${edge.weight.toFixed(3)}): ${heads.length} heads, ${traces.length} trace links -> ${await shot(page, "graph-03-edge.png")}`);
    if (traces.length) {
      // the Debugger opens the pair traced through its query and key
      elsewhere = true;
      await page.click('[data-testid="trace-link"]');
      await page.waitForSelector('[data-testid="result"][data-stale="false"]', { timeout: TIMEOUT });
      const t = params(page);
      if (new URL(page.url()).pathname !== "/" || t.get("through") !== "query_key") fail(`the trace link opened ${page.url()}`);
      step(`trace Q/K link: the Debugger traces ${t.get("trace")} through ${t.get("through")}`);
      await page.goBack();
      await waitForGraph(page);
      await page.waitForSelector('[data-testid="edge-panel"] [data-testid="edge-heads"]', { timeout: TIMEOUT });
      elsewhere = false;
    }

    // 5. Pin nodes (the panel's button, then ctrl-click two more: a correlation needs three points),
    // check them causally.
    await page.click('[data-testid="pin-button"]');
    await page.waitForFunction((k) => new URL(location.href).searchParams.get("pinned") === k, latent.key);
    const others = [...latents.filter((l) => l.key !== latent.key), ...(await nodes(page, "error"))].slice(0, 2);
    for (const [i, other] of others.entries()) {
      await page.click(sel(other.key), { modifiers: ["Control"] });
      await page.waitForFunction((n) => (new URL(location.href).searchParams.get("pinned") ?? "").split(",").length === n, i + 2);
    }
    const pinned = params(page).get("pinned").split(",");
    const shownPinned = (await nodes(page)).filter((n) => n.pinned).map((n) => n.key);
    if (JSON.stringify(shownPinned.sort()) !== JSON.stringify([...pinned].sort())) fail(`pinned ${pinned}, drawn as pinned ${shownPinned}`);
    await page.click('[data-testid="check-button"]');
    await page.waitForSelector('[data-testid="check-table"]', { timeout: TIMEOUT });
    await page.waitForSelector('[data-testid="check-panel"] .verify-body:not(.stale)', { timeout: TIMEOUT });
    await noError(page, "the causal check");
    const rows = await page.$$eval('[data-testid="check-row"]', (xs) => xs.map((x) => x.dataset.id));
    if (JSON.stringify([...rows].sort()) !== JSON.stringify([...pinned].sort())) fail(`the check has rows ${rows}, not the pinned ${pinned}`);
    if (!(await page.$('[data-testid="check-together"]'))) fail("the check has no together row");
    const pearson = await page.innerText('[data-testid="check-pearson"]');
    const spearman = await page.innerText('[data-testid="check-spearman"]');
    if (Number.isNaN(Number(pearson)) || Number.isNaN(Number(spearman))) fail(`the check shows no correlation (pearson ${pearson}, spearman ${spearman})`);
    step(`pinned ${pinned.join(", ")}; causal check: ${rows.length} rows, pearson ${pearson}, spearman ${spearman} -> ${await shot(page, "graph-04-check.png")}`);

    // 6. A supernode of the pinned nodes, the pinned-only view.
    await page.fill('[data-testid="group-label"]', "my group");
    await page.click('[data-testid="group-button"]');
    await page.waitForSelector('[data-testid="graph-node"][data-type="supernode"]');
    await page.waitForSelector('[data-testid="supernode-panel"]');
    await page.check('[data-testid="pinned-only"]');
    await page.waitForFunction(() => new URL(location.href).searchParams.get("only") === "pinned");
    const only = await nodes(page);
    const unpinned = only.filter((n) => !n.key.startsWith("sn:") && !n.pinned && !n.key.startsWith("E_") && !logits.some((l) => l.key === n.key));
    if (unpinned.length) fail(`the pinned-only view shows unpinned nodes ${unpinned.map((n) => n.key)}`);
    step(`supernode "my group"; pinned-only view: ${only.length} nodes -> ${await shot(page, "graph-05-pinned-only.png")}`);

    // 7. A reload keeps everything.
    const url = page.url();
    await page.reload();
    await waitForGraph(page);
    if (page.url() !== url) fail(`the URL changed on reload: ${url} -> ${page.url()}`);
    await page.waitForSelector('[data-testid="graph-node"][data-type="supernode"]');
    await page.waitForSelector('[data-testid="supernode-panel"]');
    await page.waitForSelector('[data-testid="check-row"]', { timeout: TIMEOUT });
    if (!(await page.isChecked('[data-testid="pinned-only"]'))) fail("the pinned-only view did not survive the reload");
    await page.click('[data-testid="ungroup-button"]');
    await page.uncheck('[data-testid="pinned-only"]');
    await page.waitForFunction(() => !new URL(location.href).searchParams.get("supernodes"));
    const again = (await nodes(page)).filter((n) => n.pinned).map((n) => n.key);
    if (JSON.stringify(again.sort()) !== JSON.stringify([...pinned].sort())) fail(`after the reload and ungroup, pinned ${again}, not ${pinned}`);
    step(`reload keeps the pins, the supernode, the check and the view; ungrouped -> ${await shot(page, "graph-06-reloaded.png")}`);

    // 8. The Neuronpedia export and the Debugger link.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="export-button"]')]);
    const doc = JSON.parse(readFileSync(await download.path(), "utf8"));
    if (!doc.nodes?.length || !doc.links?.length || !doc.metadata) fail("the export is not a Neuronpedia graph");
    if (JSON.stringify([...doc.qParams.pinnedIds].sort()) !== JSON.stringify([...pinned].sort())) fail(`the export pins ${doc.qParams.pinnedIds}`);
    const dbg = await page.getAttribute('[data-testid="debugger-link"]', "href");
    if (new URLSearchParams(dbg.slice(2)).get("prompt") !== PROMPT) fail(`the Debugger link ${dbg} does not carry the prompt`);
    step(`export ${download.suggestedFilename()}: ${doc.nodes.length} nodes, ${doc.links.length} links; Debugger link ${dbg}`);

    if (consoleErrors.length) fail(`console errors:\n  ${consoleErrors.join("\n  ")}`);
    step("all steps passed");
  } finally {
    await browser.close();
  }
}

/** The position in a node id (`L_index_pos`, `0_L_pos`, `E_id_pos`). */
function posOf(id) {
  return Number(id.split("_").at(-1));
}

run(main);
