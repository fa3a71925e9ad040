// Data for the pages: JSON API reads and the live snapshot stream, both with the session cookie.

import { clock, windowLabel } from "./format.js";

const RETRY_MS = 5000;

/** Send the browser to the login page, coming back here afterwards. */
export function toLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

/** The tenant whose shared data this page shows (`?provider=`), or null for the user's own tenant. */
export function provider() {
  return new URLSearchParams(location.search).get("provider");
}

/** `path` with the page's provider added, so a page about shared data reads the shared data. */
export function withProvider(path) {
  const shared = provider();
  if (!shared) return path;
  return `${path}${path.includes("?") ? "&" : "?"}provider=${encodeURIComponent(shared)}`;
}

/** GET a JSON API resource; `{status, body}`. A lost session goes to the login page. */
export async function apiGet(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (response.status === 401) {
    toLogin();
    return { status: 401, body: null };
  }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  return { status: response.status, body };
}

// The windows on offer and the default are the page's radio buttons (rendered from pages.WINDOW_HOURS).
const windowInputs = () => [...document.querySelectorAll('input[name="window"]')];
const defaultHours = () => Number(windowInputs().find((input) => input.defaultChecked)?.value ?? 24);

/** The window (hours) chosen in the URL, e.g. `?hours=8`; the default window when none or an unknown one. */
export function chosenHours() {
  const hours = Number(new URLSearchParams(location.search).get("hours"));
  return windowInputs().some((input) => Number(input.value) === hours) ? hours : defaultHours();
}

/** Wire the window radio buttons: the choice goes into the URL and links, then `onChange(hours)`. */
export function initWindowSelect(onChange) {
  const hours = chosenHours();
  for (const input of windowInputs()) {
    input.checked = Number(input.value) === hours;
    input.addEventListener("change", () => {
      if (!input.checked) return;
      const chosen = Number(input.value);
      const url = new URL(location.href);
      if (chosen === defaultHours()) url.searchParams.delete("hours");
      else url.searchParams.set("hours", String(chosen));
      history.replaceState(null, "", url);
      keepWindowInLinks(chosen);
      onChange(chosen);
    });
  }
  keepWindowInLinks(hours);
  return hours;
}

/** Links marked `data-keep-window` carry the chosen window to the next page. */
export function keepWindowInLinks(hours = chosenHours()) {
  for (const a of document.querySelectorAll("a[data-keep-window]")) {
    const url = new URL(a.getAttribute("href"), location.origin);
    if (hours === defaultHours()) url.searchParams.delete("hours");
    else url.searchParams.set("hours", String(hours));
    a.setAttribute("href", url.pathname + url.search);
  }
}

/** "OEE over the last 24 h". */
export function scopeText(hours) {
  return `OEE over the last ${windowLabel(hours)}`;
}

/** Set the live indicator (`#live`): its state (connecting, live, reconnecting, offline) and text. */
export function showLive(state, text) {
  const el = document.getElementById("live");
  if (!el) return;
  el.dataset.state = state;
  el.querySelector(".live-text").textContent = text;
}

/**
 * One subscription to `/api/v1/live/stream`: calls `onSnapshot(snapshot)` for every `snapshot` event
 * and keeps the live indicator (`#live`) honest. `onMissing()` runs when the API answers 404.
 */
export class LiveFeed {
  constructor({ within = null, onSnapshot, onMissing = () => {} }) {
    this.within = within;
    this.onSnapshot = onSnapshot;
    this.onMissing = onMissing;
    this.source = null;
    this.retry = null;
    this.indicator = document.getElementById("live");
  }

  start(hours) {
    this.stop();
    this.hours = hours;
    const params = new URLSearchParams({ hours: String(hours) });
    if (this.within) params.set("within", this.within);
    if (provider()) params.set("provider", provider());
    showLive("connecting", "connecting…");
    const source = new EventSource(`/api/v1/live/stream?${params}`);
    source.addEventListener("snapshot", (event) => this.received(JSON.parse(event.data)));
    source.addEventListener("error", () => this.failed(source));
    this.source = source;
  }

  stop() {
    clearTimeout(this.retry);
    if (this.source) this.source.close();
    this.source = null;
  }

  received(snapshot) {
    // A snapshot of a window we no longer show (the selector changed meanwhile) is dropped.
    if (snapshot.window.hours !== this.hours) return;
    this.onSnapshot(snapshot);
    const el = this.indicator;
    el.dataset.generatedAt = snapshot.generated_at;
    el.dataset.windowStart = snapshot.window.start;
    el.dataset.windowEnd = snapshot.window.end;
    el.dataset.updates = String(Number(el.dataset.updates || 0) + 1);
    showLive("live", `live · updated ${clock(new Date(snapshot.generated_at))}`);
    el.classList.remove("pulse");
    void el.offsetWidth; // restart the pulse animation
    el.classList.add("pulse");
  }

  async failed(source) {
    if (source !== this.source) return;
    if (source.readyState === EventSource.CONNECTING) {
      showLive("reconnecting", "reconnecting…");
      return;
    }
    // The browser gave up: the answer was not a stream. Ask the API why.
    let status = 0;
    try {
      const probe = this.within ? withProvider(`/api/v1/assets/${encodeURIComponent(this.within)}`) : "/api/v1/auth/me";
      status = (await apiGet(probe)).status;
    } catch {
      status = 0;
    }
    if (source !== this.source || status === 401) return;
    if (status === 404) {
      this.stop();
      showLive("offline", "not found");
      this.onMissing();
      return;
    }
    showLive("offline", "offline · retrying");
    this.retry = setTimeout(() => this.start(this.hours), RETRY_MS);
  }
}
