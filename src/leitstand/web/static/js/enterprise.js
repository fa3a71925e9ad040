// The enterprise page: the time-weighted enterprise OEE, one card per plant, and a chart comparing plants.

import { clock, count, percent, tone } from "./format.js";
import { LiveFeed, apiGet, chosenHours, initWindowSelect, scopeText } from "./live.js";
import {
  apqList, bind, h, lossBar, notice, renderStateCounts, setApq, setOee, setText, sumCounts,
} from "./widgets.js";

const plantsEl = document.getElementById("plants");
const chartEl = document.getElementById("plant-chart");
const cards = new Map(); // site id → the card's elements
let sites = []; // site assets in model order
let chart = null;
const enterpriseApq = apqList();
const enterpriseLosses = lossBar({ legend: true });

async function main() {
  const { status, body } = await apiGet("/api/v1/assets?level=site");
  if (status !== 200) {
    if (status !== 401) notice("The asset model could not be loaded. Reload the page to try again.");
    return;
  }
  sites = body.assets;
  document.getElementById("enterprise-apq").replaceWith(enterpriseApq);
  document.getElementById("enterprise-losses").replaceWith(enterpriseLosses.root);
  if (!sites.length) notice("This enterprise has no plants yet. Import an asset model to see them here.");
  for (const site of sites) plantsEl.append(card(site));
  plantsEl.removeAttribute("aria-busy");
  const feed = new LiveFeed({ onSnapshot: render });
  const hours = initWindowSelect((chosen) => {
    feed.start(chosen);
    refreshShared(chosen);
  });
  feed.start(hours);
  showProductivity();
  setInterval(showProductivity, PRODUCTIVITY_REFRESH_MS);
  await showShared(hours);
  setInterval(tickClocks, 15000);
  window.addEventListener("resize", () => chart?.setSize(chartSize()));
}

function card(site) {
  const oee = h("span", { className: "kpi-big", dataset: { testid: "plant-oee" }, text: "–" });
  const gaugeFill = h("span");
  const gauge = h("div", { className: "gauge", attrs: { "aria-hidden": "true" } }, gaugeFill);
  const apq = apqList();
  const states = h("div", { dataset: { testid: "plant-states" } });
  const localTime = h("span", { className: "num" });
  const machines = h("span", { text: "–" });
  const link = h("a", { attrs: { href: `/plants/${encodeURIComponent(site.id)}` }, dataset: { keepWindow: "" }, text: site.name });
  const root = h("article", { className: "plant-card", dataset: { testid: "plant-card", siteId: site.id },
    attrs: { "aria-label": site.name } },
    h("header", {}, h("h3", {}, link), h("span", { className: "tz" }, `${site.timezone} · `, localTime)),
    h("div", { className: "figures" },
      h("div", { className: "kpi" }, h("span", { className: "kpi-label", text: "OEE" }), oee, gauge),
      apq),
    states,
    h("footer", {}, machines,
      h("a", { attrs: { href: link.getAttribute("href") }, dataset: { keepWindow: "" }, text: "Open plant →" })));
  const refs = { root, oee, gauge, gaugeFill, apq, states, localTime, machines, site };
  cards.set(site.id, refs);
  setText(localTime, clock(new Date(), site.timezone, false));
  return root;
}

function render(snapshot) {
  const rows = new Map(snapshot.oee.map((row) => [`${row.level}:${row.id}`, row]));
  const enterprise = snapshot.oee.find((row) => row.level === "enterprise");
  const hours = snapshot.window.hours;
  if (enterprise) bind("enterprise-name", enterprise.name);
  bind("enterprise-scope", scopeText(hours));
  // The enterprise figure is the API's own roll-up (time-weighted); plant figures are never averaged here.
  setOee(document.querySelector('[data-testid="enterprise-oee"]'), enterprise ? enterprise.oee : null);
  setApq(enterpriseApq, enterprise);
  enterpriseLosses.update(enterprise ? enterprise.inputs : null);
  renderStateCounts(document.querySelector('[data-bind="enterprise-states"]'),
    sumCounts(Object.values(snapshot.state_counts)));
  for (const [id, refs] of cards) {
    const row = rows.get(`site:${id}`);
    setOee(refs.oee, row ? row.oee : null);
    refs.oee.dataset.value = row && row.oee !== null ? String(row.oee) : "";
    refs.gaugeFill.style.width = `${Math.min(100, Math.max(0, (row?.oee ?? 0) * 100))}%`;
    refs.gauge.className = `gauge ${tone(row ? row.oee : null)}`;
    setApq(refs.apq, row);
    renderStateCounts(refs.states, snapshot.state_counts[id] || {});
    setText(refs.machines, row ? `${count(row.machines)} machines` : "no machines");
    setText(refs.localTime, clock(new Date(snapshot.generated_at), refs.site.timezone, false));
  }
  renderChart(sites.map((site) => rows.get(`site:${site.id}`)?.oee ?? null));
}

// Productivity: good units per machine hour over the last week against the week before, and the way
// to the target (+30 % by default), from /api/v1/kpi/productivity.
const PRODUCTIVITY_REFRESH_MS = 60000;

async function showProductivity() {
  const { status, body } = await apiGet("/api/v1/kpi/productivity?hours=168");
  if (status !== 200) return;
  const row = body.rows.find((r) => r.level === "enterprise");
  const el = document.querySelector('[data-testid="productivity"]');
  if (!row || row.units_per_machine_hour === null) return;
  el.hidden = false;
  el.dataset.value = String(row.units_per_machine_hour);
  bind("productivity-value", `${row.units_per_machine_hour.toFixed(1)} good units per machine hour`);
  const target = `target +${Math.round(body.target * 100)} %`;
  if (row.change === null) {
    const covered = Math.round((row.inputs.baseline_coverage ?? 0) * 100);
    bind("productivity-change", `the week before has records for ${covered} % of its planned time: no comparison yet · ${target}`);
    return;
  }
  const sign = row.change >= 0 ? "+" : "−";
  bind("productivity-change",
    `${sign}${Math.abs(row.change * 100).toFixed(1)} % vs the week before · ${target}: ` +
    `${Math.round(Math.max(0, row.progress) * 100)} % of the way`);
  const bar = document.querySelector('[data-bind="productivity-bar"]');
  bar.style.width = `${Math.min(100, Math.max(0, row.progress * 100))}%`;
}

// Shared data: one card per agreement in force that shares live data with this tenant.
const shared = new Map(); // agreement id → its card's elements
const SHARED_REFRESH_MS = 30000;

async function showShared(hours) {
  const { status, body } = await apiGet("/api/v1/agreements");
  if (status !== 200) return;
  const me = (await apiGet("/api/v1/auth/me")).body;
  const received = body.agreements.filter(
    (a) => a.consumer === me?.tenant && a.status === "active" && a.kinds.includes("live"));
  if (!received.length) return;
  document.getElementById("shared-section").hidden = false;
  const grid = document.getElementById("shared");
  for (const agreement of received) grid.append(sharedCard(agreement));
  refreshShared(hours);
  setInterval(() => refreshShared(chosenHours()), SHARED_REFRESH_MS);
}

function sharedCard(agreement) {
  const oee = h("span", { className: "kpi-big", dataset: { testid: "shared-oee" }, text: "–" });
  const apq = apqList();
  const states = h("div");
  const href = `/plants/${encodeURIComponent(agreement.scope)}?provider=${encodeURIComponent(agreement.provider)}`;
  const title = h("a", { attrs: { href }, dataset: { keepWindow: "" }, text: agreement.scope });
  const until = agreement.valid_until ? ` · until ${agreement.valid_until.slice(0, 10)}` : "";
  const root = h("article", { className: "plant-card shared", dataset: { testid: "shared-card", provider: agreement.provider },
    attrs: { "aria-label": `${agreement.name} (shared by ${agreement.provider})` } },
    h("header", {}, h("h3", {}, title),
      h("span", { className: "tz", text: `shared by ${agreement.provider}` })),
    h("p", { className: "muted small", text: `${agreement.name} · ${agreement.purpose}${until}` }),
    h("div", { className: "figures" },
      h("div", { className: "kpi" }, h("span", { className: "kpi-label", text: "OEE" }), oee), apq),
    states);
  shared.set(agreement.id, { agreement, oee, apq, states, title });
  return root;
}

async function refreshShared(hours) {
  for (const refs of shared.values()) {
    const { provider, scope } = refs.agreement;
    const query = `provider=${encodeURIComponent(provider)}&within=${encodeURIComponent(scope)}&hours=${hours}`;
    const { status, body } = await apiGet(`/api/v1/live/snapshot?${query}`);
    if (status !== 200) {
      setText(refs.oee, "revoked");
      continue;
    }
    const row = body.oee.find((r) => r.id === scope);
    if (row) setText(refs.title, row.name);
    setOee(refs.oee, row ? row.oee : null);
    setApq(refs.apq, row);
    renderStateCounts(refs.states, sumCounts(Object.values(body.state_counts)));
  }
}

function tickClocks() {
  const now = new Date();
  for (const refs of cards.values()) setText(refs.localTime, clock(now, refs.site.timezone, false));
}

function chartSize() {
  return { width: Math.max(240, chartEl.clientWidth), height: 170 };
}

/** Plant names without the words every plant shares ("Nordwerk Emden" → "Emden"), for short axis labels. */
function shortNames() {
  const names = sites.map((site) => site.name);
  if (names.length < 2) return names;
  const words = names.map((name) => name.split(" "));
  let shared = 0;
  while (words.every((w) => w.length > shared + 1 && w[shared] === words[0][shared])) shared += 1;
  return words.map((w) => w.slice(shared).join(" "));
}

function renderChart(values) {
  if (typeof window.uPlot === "undefined") {
    setText(chartEl, "Chart library missing: run `make web-assets`.");
    return;
  }
  const xs = values.map((_, i) => i);
  const ys = values.map((v) => (v === null ? null : v * 100));
  chartEl.setAttribute("aria-label", `OEE by plant: ${sites.map((s, i) => `${s.name} ${percent(values[i])}`).join(", ")}`);
  if (chart && chart.data[0].length === xs.length) {
    chart.setData([xs, ys]);
    return;
  }
  chart?.destroy();
  chart = new window.uPlot(chartOptions(shortNames()), [xs, ys], chartEl);
}

function chartOptions(labels) {
  const { uPlot } = window;
  const axis = { stroke: "#56616d", font: "11px system-ui, sans-serif", ticks: { show: false } };
  return {
    ...chartSize(),
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: (u) => [-0.5, u.data[0].length - 0.5] }, y: { range: [0, 100] } },
    axes: [
      { ...axis, grid: { show: false }, splits: (u) => u.data[0], values: (_u, splits) => splits.map((i) => labels[i] ?? "") },
      { ...axis, size: 44, splits: () => [0, 25, 50, 75, 100], values: (_u, splits) => splits.map((v) => `${v}%`),
        grid: { stroke: "#e8ecf0", width: 1 } },
    ],
    series: [
      {},
      { label: "OEE", fill: "#2f74c0", stroke: "#2f74c0", width: 0, points: { show: false },
        paths: uPlot.paths.bars({ size: [0.6, 56], gap: 2 }) },
    ],
    hooks: { draw: [drawBarLabels] },
  };
}

/** Write each bar's value above it. */
function drawBarLabels(u) {
  const { ctx } = u;
  ctx.save();
  ctx.font = `600 ${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
  ctx.fillStyle = "#17202a";
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  u.data[1].forEach((v, i) => {
    if (v === null) return;
    ctx.fillText(`${v.toFixed(1)}%`, u.valToPos(i, "x", true), u.valToPos(v, "y", true) - 3 * devicePixelRatio);
  });
  ctx.restore();
}

main();
