// The KPI analysis page: the OEE waterfall, the downtime Pareto, the OEE trend and a comparison of the
// plants (or of what is one level below the chosen scope), all from the JSON API for the chosen window.

import { count, duration, percent } from "./format.js";
import { apiGet, initWindowSelect } from "./live.js";
import { bind, h, notice } from "./widgets.js";

const scopeEl = document.getElementById("scope");
let chart = null;

const WATERFALL = [
  ["planned_busy_s", "Planned busy time", "total"],
  ["breakdowns_s", "− Breakdowns", "loss"],
  ["setup_s", "− Setup", "loss"],
  ["minor_stops_s", "− Minor stops", "loss"],
  ["other_delays_s", "− Other delays", "loss"],
  ["unknown_s", "− No known state", "loss"],
  ["production_s", "= Production time", "total"],
  ["speed_loss_s", "− Speed loss", "loss"],
  ["quality_loss_s", "− Quality loss", "loss"],
  ["fully_productive_s", "= Fully productive", "good"],
];

async function main() {
  const { status, body } = await apiGet("/api/v1/assets?level=site");
  if (status !== 200) {
    if (status !== 401) notice("The asset model could not be loaded. Reload the page to try again.");
    return;
  }
  for (const site of body.assets) scopeEl.append(h("option", { attrs: { value: site.id }, text: site.name }));
  const chosen = new URLSearchParams(location.search).get("within");
  if (chosen && body.assets.some((s) => s.id === chosen)) scopeEl.value = chosen;
  const hours = initWindowSelect((next) => load(next));
  scopeEl.addEventListener("change", () => {
    const url = new URL(location.href);
    if (scopeEl.value) url.searchParams.set("within", scopeEl.value);
    else url.searchParams.delete("within");
    history.replaceState(null, "", url);
    load(currentHours());
  });
  window.addEventListener("resize", () => chart?.setSize(chartSize()));
  await load(hours);
}

function currentHours() {
  return Number(document.querySelector('input[name="window"]:checked')?.value ?? 24);
}

async function load(hours) {
  const within = scopeEl.value;
  const scope = within ? `&within=${encodeURIComponent(within)}` : "";
  const bucket = hours > 48 ? "day" : "hour";
  const [oee, downtime, trend, necks] = await Promise.all([
    apiGet(`/api/v1/kpi/oee?hours=${hours}${scope}`),
    apiGet(`/api/v1/kpi/downtime?hours=${hours}&top=10${scope}`),
    apiGet(`/api/v1/kpi/trend?hours=${hours}&bucket=${bucket}${scope}`),
    within ? apiGet(`/api/v1/kpi/bottlenecks?hours=${hours}${scope}`) : { status: 200, body: { lines: [] } },
  ]);
  if ([oee, downtime, trend, necks].some((answer) => answer.status !== 200)) {
    if (oee.status !== 401) notice("The KPIs could not be loaded. Reload the page to try again.");
    return;
  }
  const rows = oee.body.rows;
  const top = within ? rows.find((r) => r.id === within) : rows.find((r) => r.level === "enterprise");
  bind("kpi-title", `KPI analysis · ${top ? top.name : "no data"} · last ${hours >= 48 ? `${hours / 24} days` : `${hours} h`}`);
  const enterprise = rows.find((r) => r.level === "enterprise");
  if (enterprise) bind("enterprise-name", enterprise.name);
  renderWaterfall(top);
  renderPareto(downtime.body.rows);
  const childLevel = within ? "area" : "site";
  bind("compare-title", within ? "Areas compared" : "Plants compared");
  renderCompare(rows.filter((r) => r.level === childLevel));
  renderTrend(trend.body, top);
  renderBottlenecks(within ? necks.body.lines : null);
}

function renderBottlenecks(lines) {
  const body = document.getElementById("neck-rows");
  body.replaceChildren();
  if (lines === null) {  // lines are compared within a plant; the enterprise has too many to list
    body.append(h("tr", {}, h("td", { attrs: { colspan: "5" }, className: "muted",
      text: "Choose a plant as the scope to see its lines' bottlenecks." })));
    return;
  }
  for (const line of lines) {
    const neck = line.machines.find((m) => m.id === line.bottleneck);
    body.append(h("tr", { dataset: { testid: "bottleneck-row", lineId: line.id, bottleneck: line.bottleneck ?? "" } },
      h("td", { text: line.name }),
      h("td", { text: neck ? neck.name : "–" }),
      h("td", { text: duration(neck ? neck.avg_active_period_s : null) }),
      h("td", { text: percent(neck ? neck.active_share : null) }),
      h("td", { text: line.output ? `${count(line.output.good)} good · ${line.output.good_per_hour.toFixed(1)}/h` : "–" })));
  }
}

function renderWaterfall(row) {
  const el = document.getElementById("waterfall");
  el.replaceChildren();
  if (!row) return;
  const total = row.losses.planned_busy_s || 0;
  for (const [key, label, kind] of WATERFALL) {
    const seconds = row.losses[key];
    const share = total > 0 ? Math.max(0, seconds) / total : 0;
    el.append(
      h("span", { text: label }),
      h("div", { className: "bar-track" },
        h("span", { className: `bar-fill ${kind}`, attrs: { style: `left:0;width:${(share * 100).toFixed(2)}%` } })),
      h("span", { className: "num", dataset: { testid: "waterfall-value", key, seconds: String(seconds) },
        text: `${duration(seconds)} · ${percent(total > 0 ? seconds / total : null)}` }),
    );
  }
}

function renderPareto(rows) {
  const el = document.getElementById("pareto");
  el.replaceChildren();
  if (!rows.length) {
    el.append(h("span", { className: "muted", text: "No lost time in this window." }));
    return;
  }
  const largest = rows[0].duration_s || 1;
  for (const row of rows) {
    const label = [row.category.replaceAll("_", " "), row.state, row.reason].filter(Boolean).join(" · ");
    el.append(
      h("span", { text: label, attrs: { title: `${count(row.stops)} stops on ${count(row.machines)} machines` } }),
      h("div", { className: "bar-track" },
        h("span", { className: "bar-fill loss", attrs: { style: `left:0;width:${((row.duration_s / largest) * 100).toFixed(2)}%` } })),
      h("span", { className: "num", dataset: { testid: "pareto-row", seconds: String(row.duration_s) },
        text: `${duration(row.duration_s)} · cum. ${percent(row.cumulative_share)}` }),
    );
  }
}

function renderCompare(rows) {
  const body = document.getElementById("compare-rows");
  body.replaceChildren();
  const sorted = [...rows].sort((a, b) => (a.oee ?? 2) - (b.oee ?? 2)); // weakest first
  for (const row of sorted) {
    body.append(h("tr", { dataset: { testid: "compare-row", assetId: row.id } },
      h("td", { text: row.name }),
      h("td", { dataset: { testid: "compare-oee" }, text: percent(row.oee) }),
      h("td", { text: percent(row.availability) }),
      h("td", { text: percent(row.performance) }),
      h("td", { text: percent(row.quality) }),
      h("td", { text: duration(row.kpis.mtbf_s) }),
      h("td", { text: duration(row.kpis.mttr_s) }),
      h("td", { text: percent(row.kpis.scrap_ratio) }),
      h("td", { text: percent(row.kpis.rework_ratio) }),
      h("td", { text: count(row.inputs.failures) })));
  }
}

function chartSize() {
  const el = document.getElementById("trend");
  return { width: Math.max(280, el.clientWidth), height: 220 };
}

const COLOURS = ["#17202a", "#2f74c0", "#23a55a", "#e08a1e", "#b23b3b", "#7b55b5", "#3aa6a0", "#8a8f96"];

function renderTrend(trend, top) {
  const el = document.getElementById("trend");
  if (typeof window.uPlot === "undefined") {
    el.textContent = "Chart library missing: run `make web-assets`.";
    return;
  }
  const xs = trend.buckets.map((b) => Date.parse(b.start) / 1000);
  // the scope first (thick), then the assets one level below it
  const series = [...trend.series].sort((a, b) => (a.id === top?.id ? -1 : b.id === top?.id ? 1 : 0));
  const data = [xs, ...series.map((s) => s.values.map((v) => (v && v.oee !== null ? v.oee * 100 : null)))];
  el.dataset.points = String(xs.length);
  el.dataset.series = String(series.length);
  chart?.destroy();
  chart = new window.uPlot({
    ...chartSize(),
    scales: { y: { range: [0, 100] } },
    axes: [{}, { values: (_u, splits) => splits.map((v) => `${v}%`), size: 48 }],
    series: [
      {},
      ...series.map((s, i) => ({ label: s.name, stroke: COLOURS[i % COLOURS.length], width: i === 0 ? 3 : 1.5,
        spanGaps: false, value: (_u, v) => (v === null ? "–" : `${v.toFixed(1)}%`) })),
    ],
  }, data, el);
}

main();
