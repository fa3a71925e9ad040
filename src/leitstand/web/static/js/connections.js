// The connections page: each plant connection's link state and traffic, refreshed every few seconds.

import { clock, count, duration } from "./format.js";
import { apiGet } from "./live.js";
import { h, notice, setText } from "./widgets.js";

const REFRESH_MS = 2000;
const rows = document.getElementById("conn-rows");
const LINK = { connected: "tone-good", starting: "tone-fair", disconnected: "tone-poor", stopped: "tone-none", disabled: "tone-none" };

function ago(epochSeconds, now) {
  return epochSeconds ? `${duration(now - epochSeconds)} ago` : "never";
}

function faults(errors) {
  const entries = Object.entries(errors || {}).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([code, n]) => `${code} ${count(n)}`).join(", ") : "none";
}

function render(connections) {
  const now = Date.now() / 1000;
  document.getElementById("conn-empty").hidden = connections.length > 0;
  rows.replaceChildren(
    ...connections.map((c) => {
      const health = c.health;
      const state = health.state;
      const link = h("td", { className: LINK[state] || "tone-none", dataset: { testid: "conn-state" }, text: state });
      if (health.detail) link.title = health.detail;
      const lastError = health.last_error ? `${health.last_error.code}: ${health.last_error.message}` : "";
      return h(
        "tr",
        { dataset: { testid: "connection", name: c.name } },
        h("th", { attrs: { scope: "row" }, text: c.name }),
        h("td", { text: c.protocol }),
        h("td", { text: c.source }),
        link,
        h("td", { text: health.since ? ago(health.since, now) : "–" }),
        h("td", { dataset: { testid: "conn-last" }, text: state === "disabled" ? "–" : ago(health.last_message_at, now) }),
        h("td", { dataset: { testid: "conn-rate" }, text: health.messages_per_s === undefined ? "–" : health.messages_per_s.toFixed(1) }),
        h("td", { dataset: { testid: "conn-messages" }, text: count(health.messages) }),
        h("td", { text: count(health.records) }),
        h("td", { dataset: { testid: "conn-faults" }, attrs: { title: lastError }, text: faults(health.errors) }),
      );
    }),
  );
  setText(document.getElementById("conn-updated"), `as of ${clock(new Date())}`);
}

async function refresh() {
  const { status, body } = await apiGet("/api/v1/connections");
  if (status === 200) render(body.connections);
  else if (status !== 401) notice("The connections could not be loaded; retrying.");
  setTimeout(refresh, REFRESH_MS);
}

refresh();
