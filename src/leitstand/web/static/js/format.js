// How figures are written on every page. One place, so the pages and the browser test agree.

/** A ratio (0..1) as a percentage with one decimal, e.g. "61.3%"; "–" when there is no planned time. */
export function percent(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  return `${(ratio * 100).toFixed(1)}%`;
}

/** Quality band of an OEE figure: world class from 85 %, typical from 60 %. */
export function tone(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "tone-none";
  if (ratio >= 0.85) return "tone-good";
  if (ratio >= 0.6) return "tone-fair";
  return "tone-poor";
}

/** A duration in seconds, short: "45 s", "12 min", "3 h 05 min", "2 d 4 h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

const clocks = new Map();

/** hh:mm:ss (or hh:mm) of a date in a time zone; the browser's own zone when none is given. */
export function clock(date, timeZone, withSeconds = true) {
  const key = `${timeZone || ""}|${withSeconds}`;
  let fmt = clocks.get(key);
  if (!fmt) {
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (withSeconds) options.second = "2-digit";
    try {
      fmt = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: timeZone || undefined });
    } catch {
      fmt = new Intl.DateTimeFormat("en-GB", options); // an unknown zone name: show browser time
    }
    clocks.set(key, fmt);
  }
  return fmt.format(date);
}

const integers = new Intl.NumberFormat("en-GB");

/** A count with thousands separators (the API may send large integers as strings). */
export function count(n) {
  return n === null || n === undefined || n === "" ? "–" : integers.format(Number(n));
}

/** "8 h", "24 h", "7 d". */
export function windowLabel(hours) {
  return hours >= 48 && hours % 24 === 0 ? `${hours / 24} d` : `${hours} h`;
}

/** A state code as people read it: "PLANNED_MAINTENANCE" → "PLANNED MAINTENANCE". */
export function stateLabel(state) {
  return state ? state.replaceAll("_", " ") : "NO DATA";
}
