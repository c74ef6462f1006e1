// Working-time arithmetic in the browser (工作时), from the calendar the dispatch service
// serves at /dashboard/api/calendar: working days (statutory holidays, make-up days and county
// overrides already applied) and the daily working periods. Beijing time has no DST: UTC+8.

const DAY_MS = 86400000;
const BEIJING_MS = 8 * 3600000;
const DEFAULT_PERIODS = [["08:30", "12:00"], ["13:30", "17:30"]];

const minutes = (hhmm) => {
  const [h, m] = hhmm.split(":").map(Number);
  return h * 60 + m;
};

/** The day number (days since 1970-01-01, Beijing) of an instant. */
const dayOf = (ms) => Math.floor((ms + BEIJING_MS) / DAY_MS);
const isoOfDay = (day) => new Date(day * DAY_MS).toISOString().slice(0, 10);

export class WorkCalendar {
  constructor(json) {
    const hours = json?.working_hours?.length ? json.working_hours : DEFAULT_PERIODS;
    this.periods = hours.map(([s, e]) => [minutes(s), minutes(e)]);
    this.hoursPerDay = this.periods.reduce((acc, [s, e]) => acc + (e - s), 0) / 60;
    this.days = new Set(json?.working_days || []);
    this.first = json?.from || null;
    this.last = json?.to || null;
    this.known = Boolean(json?.working_days);
  }

  /** Whether a day (Beijing) is a working day; outside the served range: Monday–Friday. */
  isWorkingDay(day) {
    const iso = isoOfDay(day);
    if (this.known && this.first && this.last && iso >= this.first && iso <= this.last) return this.days.has(iso);
    const weekday = new Date(day * DAY_MS).getUTCDay();
    return weekday >= 1 && weekday <= 5;
  }

  /** Working hours from `a` to `b` (Date or ISO); negative when b is before a. */
  hoursBetween(a, b) {
    let start = new Date(a).getTime();
    let end = new Date(b).getTime();
    let sign = 1;
    if (end < start) { [start, end] = [end, start]; sign = -1; }
    let total = 0;
    const lastDay = dayOf(end);
    for (let day = dayOf(start); day <= lastDay; day += 1) {
      if (!this.isWorkingDay(day)) continue;
      const midnight = day * DAY_MS - BEIJING_MS;
      for (const [s, e] of this.periods) {
        const from = Math.max(start, midnight + s * 60000);
        const to = Math.min(end, midnight + e * 60000);
        if (to > from) total += to - from;
      }
    }
    return (sign * total) / 3600000;
  }
}

/**
 * Where a case stands against its 办结 deadline, on its own time basis.
 * Returns {kind: "none" | "ok" | "soon" | "over", remaining, total, fraction, basis, text}.
 * "soon" (即将超期) = less than 20 % of the allowed time left.
 */
export function deadlineStatus(kase, calendar, now = new Date()) {
  if (!kase?.deadline) return { kind: "none", text: "无办结期限" };
  const basis = kase.time_basis === "natural" ? "natural" : "working";
  const from = kase.dispatched_at || kase.reported_at;
  const hours = (a, b) => (basis === "working" && calendar
    ? calendar.hoursBetween(a, b)
    : (new Date(b).getTime() - new Date(a).getTime()) / 3600000);
  const remaining = hours(now, kase.deadline);
  const total = from ? hours(from, kase.deadline) : null;
  const fraction = total && total > 0 ? Math.max(0, remaining) / total : null;
  const finished = ["resolved", "closed"].includes(kase.state);
  let kind;
  if (kase.overdue || remaining <= 0) kind = "over";
  else if (fraction !== null && fraction < 0.2) kind = "soon";
  else kind = "ok";
  const perDay = basis === "working" && calendar ? calendar.hoursPerDay : 24;
  const span = (h) => {
    const abs = Math.abs(h);
    const hours = (x) => `${x.toFixed(1)} ${basis === "working" ? "工作小时" : "小时"}`;
    if (abs < perDay) return hours(abs);
    const days = Math.floor(abs / perDay);
    const rest = abs - days * perDay;
    const dayText = basis === "working" ? `${days} 个工作日` : `${days} 天`;
    return rest >= 0.1 ? `${dayText} ${rest.toFixed(1)} 小时` : dayText;
  };
  let text;
  if (finished) text = kase.overdue ? "已办结（曾超期）" : "已办结";
  else if (kind === "over") text = remaining <= 0 ? `已超期 ${span(remaining)}` : "已超期";
  else text = `剩余 ${span(remaining)}`;
  return { kind: finished ? (kase.overdue ? "over" : "ok") : kind, remaining, total, fraction, basis, text, finished };
}
