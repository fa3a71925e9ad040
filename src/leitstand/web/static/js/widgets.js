// Small DOM building blocks shared by the pages. Text always goes in through textContent.

import { percent, stateLabel, tone } from "./format.js";

/** Create an element: `h("p", {className: "x", dataset: {testid: "y"}, attrs: {href: "/"}}, "text", child)`. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const { className, dataset, attrs, text } = props;
  if (className) el.className = className;
  if (dataset) Object.assign(el.dataset, dataset);
  if (attrs) for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  if (text !== undefined) el.textContent = text;
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

/** Set the text of an element only when it changed (keeps selection and avoids layout work). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Show an OEE ratio in `el` with its quality colour. */
export function setOee(el, ratio) {
  setText(el, percent(ratio));
  for (const cls of ["tone-good", "tone-fair", "tone-poor", "tone-none"]) el.classList.remove(cls);
  el.classList.add(tone(ratio));
}

// Display order of known states, best first; any other plant code is shown after them.
export const STATES = [
  "RUNNING", "SETUP", "IDLE", "STARVED", "BLOCKED", "MICROSTOP", "DOWN", "PLANNED_MAINTENANCE", "OFF",
];

/** The CSS class that colours a state; plant-specific codes share one colour. */
export function stateClass(state) {
  if (!state) return "st-none";
  return STATES.includes(state) ? `st-${state}` : "st-other";
}

/** Replace the `st-*` class of `el` by the one for `state`. */
export function setStateClass(el, state) {
  for (const cls of [...el.classList]) if (cls.startsWith("st-")) el.classList.remove(cls);
  el.classList.add(stateClass(state));
}

/** An A/P/Q list; update it with `setApq`. */
export function apqList() {
  const dl = h("dl", { className: "apq" });
  for (const [key, title] of [["availability", "A"], ["performance", "P"], ["quality", "Q"]]) {
    dl.append(h("div", { attrs: { title: key[0].toUpperCase() + key.slice(1) } },
      h("dt", { text: title }), h("dd", { dataset: { apq: key }, text: "–" })));
  }
  return dl;
}

export function setApq(dl, row) {
  for (const dd of dl.querySelectorAll("dd")) setText(dd, percent(row ? row[dd.dataset.apq] : null));
}

/** Fill `container` with a bar and a legend of how many machines are in which state. */
export function renderStateCounts(container, counts, { legend = true } = {}) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  entries.sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  const summary = total ? entries.map(([s, n]) => `${n} ${stateLabel(s)}`).join(", ") : "no machine states yet";
  const bar = h("div", { className: "state-bar", attrs: { role: "img", "aria-label": summary } });
  for (const [state, n] of entries) {
    const seg = h("span", { className: stateClass(state), attrs: { title: `${stateLabel(state)}: ${n}` } });
    seg.style.flexGrow = String(n);
    bar.append(seg);
  }
  const parts = [bar];
  if (legend) {
    const list = h("ul", { className: "state-legend", attrs: { "aria-hidden": "true" } });
    for (const [state, n] of entries) {
      list.append(h("li", {}, h("span", { className: `swatch ${stateClass(state)}` }),
        h("span", { className: "num", text: String(n) }), ` ${stateLabel(state).toLowerCase()}`));
    }
    if (!entries.length) list.append(h("li", { className: "muted", text: summary }));
    parts.push(list);
  }
  container.dataset.summary = summary;
  container.replaceChildren(...parts);
}

function rank(state) {
  const i = STATES.indexOf(state);
  return i < 0 ? STATES.length : i;
}

// Where planned busy time goes (ISO 22400 categories), in the order of the time model.
export const LOSSES = [
  ["production", "production"], ["setup", "setup"], ["delay", "delay"], ["down", "down"], ["unknown", "unknown"],
];

/** A bar of how planned busy time split into production, setup, delay, down and unknown. */
export function lossBar({ legend = false } = {}) {
  const bar = h("div", { className: "loss-bar", attrs: { role: "img", "aria-label": "No planned busy time" } });
  const segments = {};
  const shares = {};
  const list = legend ? h("ul", { className: "state-legend", attrs: { "aria-hidden": "true" } }) : null;
  for (const [kind, label] of LOSSES) {
    segments[kind] = h("span", { className: `tc-${kind}`, attrs: { title: label } });
    bar.append(segments[kind]);
    if (list) {
      shares[kind] = h("span", { className: "num", text: "–" });
      list.append(h("li", {}, h("span", { className: `swatch tc-${kind}` }), shares[kind], ` ${label}`));
    }
  }
  const root = h("div", { className: "losses" }, bar, list);
  function update(inputs) {
    const pbt = inputs ? inputs.pbt_s : 0;
    const spoken = [];
    for (const [kind, label] of LOSSES) {
      const share = pbt > 0 ? inputs[`${kind}_s`] / pbt : null;
      segments[kind].style.width = share === null ? "0" : `${Math.max(0, share * 100)}%`;
      segments[kind].title = `${label}: ${percent(share)}`;
      if (list) setText(shares[kind], percent(share));
      if (share !== null) spoken.push(`${label} ${percent(share)}`);
    }
    bar.setAttribute("aria-label", spoken.length ? `Planned busy time: ${spoken.join(", ")}` : "No planned busy time");
  }
  return { root, update };
}

/** Add up per-state counts, e.g. of several plants. */
export function sumCounts(list) {
  const total = {};
  for (const counts of list) {
    for (const [state, n] of Object.entries(counts || {})) total[state] = (total[state] || 0) + n;
  }
  return total;
}

/** Set the text of every `[data-bind=name]` element on the page. */
export function bind(name, text) {
  for (const el of document.querySelectorAll(`[data-bind="${name}"]`)) setText(el, text);
}

/** Show a page-level message (e.g. an unknown plant) in the notice box. */
export function notice(text) {
  const el = document.getElementById("notice");
  if (!el) return;
  el.textContent = text;
  el.hidden = !text;
}
