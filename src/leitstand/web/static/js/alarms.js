// The alarm console: open alarms pushed by /api/v1/alarms/stream, acknowledged and shelved from here.

import { clock, duration } from "./format.js";
import { showLive, toLogin } from "./live.js";
import { h, notice, setText } from "./widgets.js";

const rows = document.getElementById("alarm-rows");
const PRIORITY = { urgent: "tone-poor", high: "tone-poor", medium: "tone-fair", low: "tone-none" };
const NEEDS_ACK = new Set(["unacknowledged", "returned_unacknowledged"]);
const RETRY_MS = 5000;

async function act(alarm, action, body = {}) {
  const response = await fetch(`/api/v1/alarms/${alarm.id}/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  if (response.status === 401) toLogin();
  else if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    notice(problem.detail || `The alarm could not be changed (${response.status}).`);
  }
}

function button(text, testid, onClick) {
  const el = h("button", { className: "btn-act", dataset: { testid }, attrs: { type: "button" }, text });
  el.addEventListener("click", onClick);
  return el;
}

function note(alarm) {
  if (alarm.state === "shelved") return `shelved until ${clock(new Date(alarm.shelved_until))}`;
  if (alarm.suppressed === "consequential") return `consequence of alarm ${alarm.group_id}`;
  if (alarm.suppressed) return alarm.suppressed;
  return alarm.activations > 1 ? `${alarm.activations} activations` : "";
}

function render(data) {
  const now = Date.now() / 1000;
  const alarms = data.alarms;
  document.getElementById("alarm-empty").hidden = alarms.length > 0;
  const s = data.summary;
  setText(
    document.getElementById("alarm-summary"),
    `${s.unacknowledged} to acknowledge · ${s.suppressed} suppressed · as of ${clock(new Date())}`,
  );
  rows.replaceChildren(
    ...alarms.map((a) => {
      const since = a.activated_at ? `${duration(now - Date.parse(a.activated_at) / 1000)} ago` : "–";
      const actions = h("td", {});
      if (NEEDS_ACK.has(a.state)) {
        actions.append(button("Acknowledge", "ack", () => act(a, "acknowledge")));
      }
      if (a.state !== "shelved" && a.state !== "out_of_service" && a.state !== "normal") {
        actions.append(button("Shelve 1 h", "shelve", () => act(a, "shelve", { minutes: 60 })));
      }
      return h(
        "tr",
        { dataset: { testid: "alarm", id: String(a.id), state: a.state, rule: a.rule_id } },
        h("td", { className: PRIORITY[a.priority] || "", text: a.priority }),
        h("td", { dataset: { testid: "alarm-state" }, text: a.state.replaceAll("_", " ") }),
        h("td", { attrs: { title: a.asset_path }, text: a.asset_id }),
        h("td", { dataset: { testid: "alarm-message" }, attrs: { title: JSON.stringify(a.explanation) }, text: a.message }),
        h("td", { text: since }),
        h("td", { dataset: { testid: "alarm-note" }, text: note(a) }),
        actions,
      );
    }),
  );
}

function connect() {
  showLive("connecting", "connecting…");
  const source = new EventSource("/api/v1/alarms/stream");
  source.addEventListener("alarms", (event) => {
    showLive("live", "live");
    render(JSON.parse(event.data));
  });
  source.addEventListener("end", () => {
    source.close();
    toLogin();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      showLive("offline", "offline – retrying");
      setTimeout(connect, RETRY_MS);
    } else showLive("reconnecting", "reconnecting…");
  };
}

connect();
