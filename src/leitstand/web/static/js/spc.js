// The SPC page: a control chart of one measurement of one machine, with limits, rule violations and
// process capability, from /api/v1/watch/spc.

import { apiGet } from "./live.js";
import { h, notice, setText } from "./widgets.js";

const form = document.getElementById("spc-form");
const assetSelect = document.getElementById("spc-asset");
const signalSelect = document.getElementById("spc-signal");
const charts = {};
let machines = [];

function fillSignals() {
  const machine = machines.find((m) => m.id === assetSelect.value);
  const wanted = new URLSearchParams(location.search).get("signal");
  signalSelect.replaceChildren(...(machine?.signals || []).map((s) => h("option", { attrs: { value: s.name }, text: s.unit ? `${s.name} (${s.unit})` : s.name })));
  if (wanted && machine?.signals.some((s) => s.name === wanted)) signalSelect.value = wanted;
}

function draw(id, chart, timestamps) {
  const el = document.getElementById(id);
  charts[id]?.destroy();
  const xs = chart.points.map((_, i) => i + 1);
  const flagged = new Set(chart.signals);
  const line = (v) => xs.map(() => v);
  const data = [xs, chart.points, line(chart.center), line(chart.ucl), chart.lcl === null ? line(null) : line(chart.lcl), chart.points.map((v, i) => (flagged.has(i) ? v : null))];
  el.dataset.points = String(xs.length);
  el.dataset.signals = String(chart.signals.length);
  charts[id] = new window.uPlot({
    width: Math.max(320, el.clientWidth),
    height: 200,
    scales: { x: { time: false } },
    axes: [{ label: timestamps ? "subgroup" : "" }, { size: 60 }],
    series: [
      { label: "#" },
      { label: chart.statistic.replace("_", " "), stroke: "#2f74c0", width: 1.5, points: { size: 4 } },
      { label: "center", stroke: "#23a55a", width: 1, points: { show: false } },
      { label: "UCL", stroke: "#c23b32", width: 1, dash: [6, 4], points: { show: false } },
      { label: "LCL", stroke: "#c23b32", width: 1, dash: [6, 4], points: { show: false } },
      { label: "rule broken", stroke: "transparent", points: { size: 8, fill: "#c23b32", stroke: "#c23b32" } },
    ],
  }, data, el);
}

function number(v, digits = 3) {
  return v === null || v === undefined ? "–" : Number(v).toPrecision(digits);
}

async function show(event) {
  event?.preventDefault();
  if (typeof window.uPlot === "undefined") {
    notice("Chart library missing: run `make web-assets`.");
    return;
  }
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) if (value !== "") params.set(name, String(value));
  history.replaceState(null, "", `?${params}`);
  const { status, body } = await apiGet(`/api/v1/watch/spc?${params}`);
  if (status !== 200) {
    notice(body?.detail || `The chart could not be computed (${status}).`);
    return;
  }
  document.getElementById("notice").hidden = true;
  const c = body.chart;
  draw("spc-location", c.location, true);
  draw("spc-dispersion", c.dispersion, true);
  const violations = [...c.location.violations, ...c.dispersion.violations];
  setText(document.getElementById("spc-summary"), `${c.location.points.length} points · σ within ${number(c.sigma_within)} · ${violations.length} rule violations${c.baseline_in_control ? "" : " · the baseline itself is not in control"}`);
  document.getElementById("spc-violations").replaceChildren(...violations.slice(0, 50).map((v) => h("tr", { dataset: { testid: "spc-violation" } }, h("td", { text: String(v.index + 1) }), h("td", { text: `${v.rule}: ${v.name}` }), h("td", { text: v.description }))));
  const cap = body.capability;
  setText(document.getElementById("spc-capability"), cap ? `Cp ${number(cap.cp)} · Cpk ${number(cap.cpk)} · Pp ${number(cap.pp)} · Ppk ${number(cap.ppk)} (mean ${number(cap.mean, 4)}, ${cap.count} measurements)` : "Give LSL and/or USL for Cp, Cpk, Pp, Ppk.");
}

async function main() {
  const { status, body } = await apiGet("/api/v1/assets?level=machine");
  if (status !== 200) {
    notice("The machines could not be loaded.");
    return;
  }
  machines = body.assets.filter((a) => a.signals.length);
  assetSelect.replaceChildren(...machines.map((m) => h("option", { attrs: { value: m.id }, text: m.name })));
  const query = new URLSearchParams(location.search);
  for (const [name, value] of query) {
    const field = form.elements.namedItem(name);
    if (field && name !== "signal") field.value = value;
  }
  fillSignals();
  assetSelect.addEventListener("change", fillSignals);
  document.getElementById("spc-chart").addEventListener("change", (e) => {
    const n = document.getElementById("spc-n");
    if (e.target.value === "i_mr") n.value = "1";
    else if (Number(n.value) < 2) n.value = "5";
  });
  form.addEventListener("submit", show);
  if (query.has("asset_id")) show();
}

main();
