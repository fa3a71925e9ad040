// The plant page: the site's OEE, then per area and line each machine's live state, OEE and time model.

import { clock, count, duration, percent, stateLabel } from "./format.js";
import { LiveFeed, apiGet, initWindowSelect, scopeText, showLive, withProvider } from "./live.js";
import {
  apqList, bind, h, lossBar, notice, renderStateCounts, setApq, setOee, setStateClass, setText,
} from "./widgets.js";

const siteId = document.getElementById("plant").dataset.siteId;
const machines = new Map(); // machine id → its tile's elements
const groups = new Map(); // area or line id → its heading's elements
let site = null;
const siteApq = apqList();
const siteLosses = lossBar({ legend: true });

async function main() {
  const { status, body } = await apiGet(withProvider("/api/v1/assets"));
  if (status === 404) {
    missing();
    return;
  }
  if (status !== 200) {
    if (status !== 401) notice("The asset model could not be loaded. Reload the page to try again.");
    return;
  }
  const enterprise = body.assets.find((a) => a.level === "enterprise");
  if (enterprise) bind("enterprise-name", enterprise.name);
  if (body.source.shared) {
    const banner = document.getElementById("shared-by");
    banner.hidden = false;
    setText(banner, `Shared by ${body.source.tenant} under the agreement “${body.source.agreement_name}”`);
  }
  site = body.assets.find((a) => a.id === siteId && a.level === "site");
  if (!site) {
    missing();
    return;
  }
  bind("site-name", site.name);
  bind("site-tz", site.timezone);
  document.title = `${site.name} · Leitstand`;
  const children = new Map();
  for (const asset of body.assets) {
    if (!children.has(asset.parent_id)) children.set(asset.parent_id, []);
    children.get(asset.parent_id).push(asset);
  }
  document.getElementById("site-apq").replaceWith(siteApq);
  document.getElementById("site-losses").replaceWith(siteLosses.root);
  const areasEl = document.getElementById("areas");
  for (const area of children.get(site.id) || []) areasEl.append(areaSection(area, children));
  if (!children.get(site.id)?.length) notice("This plant has no areas or machines in its asset model yet.");
  areasEl.removeAttribute("aria-busy");
  const feed = new LiveFeed({ within: siteId, onSnapshot: render, onMissing: missing });
  feed.start(initWindowSelect((hours) => feed.start(hours)));
  tick();
  setInterval(tick, 5000);
}

function missing() {
  document.getElementById("plant").hidden = true;
  showLive("offline", "not found");
  notice(`Plant “${siteId}” was not found. It does not exist, or it is not part of your enterprise. `);
  document.getElementById("notice").append(h("a", { attrs: { href: "/" }, text: "Back to all plants" }));
}

function areaSection(area, children) {
  const heading = groupHeading("h2", area, "area-oee");
  const section = h("section", { className: "area", dataset: { assetId: area.id },
    attrs: { "aria-label": area.name } }, heading.root);
  for (const line of children.get(area.id) || []) {
    const lineHead = groupHeading("h3", line, "line-oee");
    const states = h("div", { attrs: { title: "Machines now" } });
    lineHead.root.append(states);
    lineHead.states = states;
    const grid = h("div", { className: "machine-grid" });
    for (const machine of children.get(line.id) || []) grid.append(machineTile(machine));
    lineHead.machineIds = (children.get(line.id) || []).map((m) => m.id);
    section.append(h("div", { className: "line", dataset: { assetId: line.id } }, lineHead.root, grid));
  }
  return section;
}

function groupHeading(tag, asset, testid) {
  const figure = h("span", { className: "figure", dataset: { testid }, text: "–" });
  const apq = apqList();
  const root = h("header", { className: tag === "h2" ? "area-head" : "line-head" },
    h(tag, { text: asset.name }), figure, apq);
  const refs = { root, figure, apq };
  groups.set(asset.id, refs);
  return refs;
}

// The rows of the time-model table: [input key, short label, long label, time category].
const TIMES = [
  ["pot_s", "Planned time", "Planned operation time (POT): shift time without breaks"],
  ["planned_down_s", "− planned down", "Planned downtime, e.g. maintenance: not part of PBT"],
  ["pbt_s", "= PBT", "Planned busy time: the base of availability and OEE", "total"],
  ["production_s", "Production", "Time in a production state (APT)", "production"],
  ["setup_s", "Setup", "Setup and changeovers", "setup"],
  ["delay_s", "Delay", "Idle, starved, blocked and microstops", "delay"],
  ["down_s", "Down", "Breakdowns, faults and off", "down"],
  ["unknown_s", "Unknown", "No state known, or a state code no mapping names", "unknown"],
];
const QUANTITIES = [
  ["produced", "Produced"],
  ["good", "Good"],
  ["scrap", "Scrap"],
  ["rework", "Rework"],
];

function machineTile(asset) {
  const pill = h("span", { className: "state-pill", dataset: { testid: "machine-state" }, text: stateLabel(null) });
  const since = h("span", { className: "since", dataset: { testid: "machine-since" } });
  const reason = h("p", { className: "reason", dataset: { testid: "machine-reason" } });
  const oee = h("span", { className: "figure", dataset: { testid: "machine-oee" }, text: "–" });
  const apq = apqList();
  const inputs = inputsDisclosure();
  const root = h("article", { className: "machine st-none", dataset: { testid: "machine-tile", assetId: asset.id },
    attrs: { "aria-label": asset.name } },
    h("div", { className: "machine-head" },
      h("h4", { text: asset.name, attrs: { title: `${asset.name} (${asset.id})` } }),
      h("span", { className: "type", text: (asset.machine_type || "").replaceAll("_", " ") })),
    h("p", { className: "state-line" }, pill, since),
    reason,
    h("div", { className: "machine-figures" }, oee, apq),
    inputs.root);
  machines.set(asset.id, { root, pill, since, reason, oee, apq, inputs, sinceDate: null, state: null });
  return root;
}

function inputsDisclosure() {
  const cells = {};
  const tbody = h("tbody");
  for (const [key, label, title, kind] of TIMES) {
    const value = h("td");
    const share = h("td", { className: "muted" });
    const swatch = kind && kind !== "total" ? h("span", { className: `swatch tc-${kind}` }) : null;
    tbody.append(h("tr", { className: kind === "total" ? "total" : "" },
      h("th", { attrs: { scope: "row", title } }, swatch, label), value, share));
    cells[key] = { value, share };
  }
  QUANTITIES.forEach(([key, label], i) => {
    const value = h("td");
    tbody.append(h("tr", { className: i === 0 ? "sep" : "" }, h("th", { attrs: { scope: "row" }, text: label }),
      value, h("td")));
    cells[key] = { value };
  });
  const losses = lossBar();
  const formula = h("p", { className: "formula" });
  const warning = h("p", { className: "formula warn", attrs: { hidden: "" } });
  const table = h("table", {},
    h("thead", { className: "sr-only" }, h("tr", {}, h("th", { text: "Input" }), h("th", { text: "Value" }),
      h("th", { text: "Share of PBT" }))),
    tbody);
  const root = h("details", { className: "inputs", dataset: { testid: "machine-inputs" } },
    h("summary", { text: "Inputs" }), losses.root, table, formula, warning);
  return { root, cells, losses, formula, warning };
}

function updateInputs(inputs, row) {
  const v = row ? row.inputs : null;
  const pbt = v ? v.pbt_s : 0;
  for (const [key, , , kind] of TIMES) {
    const cell = inputs.cells[key];
    setText(cell.value, v ? duration(v[key]) : "–");
    setText(cell.share, v && pbt > 0 && kind ? percent(v[key] / pbt) : "");
  }
  for (const [key] of QUANTITIES) setText(inputs.cells[key].value, v ? count(v[key]) : "–");
  inputs.losses.update(v);
  setText(inputs.formula, v && pbt > 0
    ? `OEE = ideal time of good units ÷ PBT = ${duration(v.good_ideal_s)} ÷ ${duration(pbt)} = ${percent(row.oee)}`
    : "No planned busy time in this window, so no OEE.");
  const without = v ? Number(v.units_without_ideal_cycle) : 0;
  inputs.warning.hidden = !without;
  setText(inputs.warning, without ? `${count(without)} units have no ideal cycle time and add no ideal time.` : "");
}

function render(snapshot) {
  const rows = new Map(snapshot.oee.map((row) => [row.id, row]));
  const states = new Map(snapshot.states.map((s) => [s.asset_id, s]));
  const siteRow = rows.get(siteId);
  bind("site-scope", scopeText(snapshot.window.hours));
  setOee(document.querySelector('[data-testid="site-oee"]'), siteRow ? siteRow.oee : null);
  setApq(siteApq, siteRow);
  siteLosses.update(siteRow ? siteRow.inputs : null);
  renderStateCounts(document.querySelector('[data-bind="site-states"]'), snapshot.state_counts[siteId] || {});
  for (const [id, refs] of groups) {
    const row = rows.get(id);
    setOee(refs.figure, row ? row.oee : null);
    setApq(refs.apq, row);
    if (refs.states) {
      const counts = {};
      for (const machineId of refs.machineIds) {
        const state = states.get(machineId)?.state;
        if (state) counts[state] = (counts[state] || 0) + 1;
      }
      renderStateCounts(refs.states, counts, { legend: false });
    }
  }
  for (const [id, refs] of machines) {
    const row = rows.get(id);
    const live = states.get(id);
    refs.state = live ? live.state : null;
    refs.sinceDate = live ? new Date(live.since) : null;
    refs.root.dataset.state = refs.state || "";
    setStateClass(refs.root, refs.state);
    setText(refs.pill, stateLabel(refs.state));
    setText(refs.reason, live && live.reason ? live.reason : "");
    refs.reason.title = refs.reason.textContent;
    setOee(refs.oee, row ? row.oee : null);
    setApq(refs.apq, row);
    updateInputs(refs.inputs, row);
    showSince(refs);
  }
}

function showSince(refs) {
  if (!refs.sinceDate) {
    setText(refs.since, "");
    return;
  }
  const seconds = (Date.now() - refs.sinceDate.getTime()) / 1000;
  setText(refs.since, `since ${clock(refs.sinceDate, site.timezone, false)} · ${duration(seconds)}`);
}

function tick() {
  bind("site-clock", clock(new Date(), site.timezone, false));
  for (const refs of machines.values()) showSince(refs);
}

main();
