// Small DOM helpers and formatting (北京时间). No framework: elements are built with h().

/**
 * Create an element. `attrs`: class, text, html-free; on<Event> handlers; dataset via data-*; others as attributes.
 * Children: nodes, strings, numbers, arrays (flattened), null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected" || key === "hidden") el[key] = Boolean(value);
    else if (key === "style") el.style.cssText = String(value); // CSSOM: allowed by the CSP (no inline style attributes)
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "style") el.style.cssText = String(value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const TZ = "Asia/Shanghai";
const dateTimeFmt = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});
const shortFmt = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TZ, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});
const timeFmt = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

function parts(fmt, date) {
  const out = {};
  for (const p of fmt.formatToParts(date)) out[p.type] = p.value;
  return out;
}

/** "2026-11-24 09:15" (Beijing time), "—" for nothing. */
export function fmtDateTime(iso) {
  if (!iso) return "—";
  const p = parts(dateTimeFmt, new Date(iso));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** "11-24 09:15" (Beijing time). */
export function fmtShort(iso) {
  if (!iso) return "—";
  const p = parts(shortFmt, new Date(iso));
  return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** "09:15:02" (Beijing time). */
export function fmtClock(date = new Date()) {
  const p = parts(timeFmt, date);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** Today's date in Beijing as {year, month, day} numbers. */
export function beijingToday(date = new Date()) {
  const p = parts(dateTimeFmt, date);
  return { year: Number(p.year), month: Number(p.month), day: Number(p.day) };
}

/** Mask mainland mobile numbers and long digit runs in free text: 13812345678 → 138****5678. */
export function maskPhones(text) {
  if (!text) return text;
  return String(text)
    .replace(/(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)/g, "$1****$2")
    .replace(/(?<!\d)(0\d{2,3}-?)\d{3,4}(\d{4})(?!\d)/g, "$1****$2");
}

/** A percentage "93.5%" from a 0..1 rate; "—" when null. */
export function pct(rate, digits = 1) {
  if (rate === null || rate === undefined || Number.isNaN(rate)) return "—";
  return `${(rate * 100).toFixed(digits)}%`;
}

/** "12.5" with at most `digits` decimals; "—" when null. */
export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return Number(value).toFixed(digits).replace(/\.0+$/, "");
}

/** Trigger a download of a Blob under `filename`. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 30000);
}

/** Show a short message in the corner. kind: "info" | "ok" | "error". */
export function toast(message, kind = "info", ms = 4000) {
  const host = document.getElementById("toasts");
  if (!host) return;
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  host.append(el);
  setTimeout(() => el.remove(), ms);
}

/** Collapse calls within `ms` into one (trailing). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
