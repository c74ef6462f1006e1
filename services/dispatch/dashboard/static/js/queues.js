// Case queues (案件队列) with live counts. The lists come from GET /v1/cases (already limited to
// the caller's scope by the server; 待回访 is GET /v1/cases?callback_pending=true); every case event
// on the stream triggers a (debounced) reload, so counts and rows change without reloading the page.

import { api } from "./api.js";
import { debounce, fmtShort, h, mount } from "./dom.js";
import { divisionName, matterName, unitName } from "./jurisdiction.js";
import { EVENT_LABELS, SOURCE_LABELS, STATE_LABELS, TRIAGE_LABELS, URGENCY_LABELS, label } from "./labels.js";
import { filterBar, kindBadge, passesFilter } from "./sources.js";
import { emit, on, store } from "./store.js";
import { deadlineStatus } from "./worktime.js";

const LIMIT = 500;

/** The queues, in tab order. `roles`: who sees the tab (default: everyone). */
export const QUEUES = [
  { id: "triage", label: "待派遣/人工分拨", roles: ["admin", "dispatcher", "township_admin", "hotline"],
    note: "系统无法自动派遣的案件：无法定位、无法定性、退单次数过多等，需人工选择承办单位。" },
  { id: "dispatched", label: "待签收", note: "已派遣、等待承办单位签收的案件。" },
  { id: "handling", label: "办理中", note: "已签收或返工/重办中的案件。" },
  { id: "due_soon", label: "即将超期", tone: "warn", note: "剩余办结时间不足 20%（按案件计时口径：工作时或自然时）。" },
  { id: "overdue", label: "已超期", tone: "alarm", note: "已超过办结期限仍未办结的案件。" },
  { id: "verify", label: "待核查", note: "承办单位已办结、等待指挥中心核查结案的案件。" },
  { id: "callback", label: "待回访", roles: ["admin", "dispatcher", "township_admin", "hotline"],
    note: "已结案、尚未回访的 12345 热线案件。" },
];

export const visibleQueues = (me) => QUEUES.filter((q) => !q.roles || q.roles.includes(me.role));

const data = {
  loaded: false,
  loading: null,
  error: null,
  triage: [],
  running: [],
  resolved: [],
  callbackPending: [],
  more: {},
  seen: new Set(),
  fresh: new Set(),
};

async function list(query, limit = LIMIT) {
  const res = await api("/v1/cases", { query: { ...query, merged: false, limit } });
  return { items: res.items, more: Boolean(res.next_cursor) };
}

/** Reload every list; resolves when done. Concurrent calls share one reload. */
export function reloadQueues() {
  if (data.loading) return data.loading;
  const me = store.me;
  const wantsTriage = visibleQueues(me).some((q) => q.id === "triage");
  const wantsCallback = visibleQueues(me).some((q) => q.id === "callback");
  data.loading = (async () => {
    try {
      const [triage, running, resolved, callback] = await Promise.all([
        wantsTriage ? list({ state: ["triage", "reported"] }) : { items: [], more: false },
        list({ state: ["dispatched", "accepted", "reopened", "rejected"] }),
        list({ state: ["resolved"] }),
        wantsCallback ? list({ callback_pending: true }) : { items: [], more: false },
      ]);
      data.triage = triage.items;
      data.running = running.items;
      data.resolved = resolved.items;
      data.callbackPending = callback.items;
      data.more = { triage: triage.more, running: running.more, resolved: resolved.more, callback: callback.more };
      const ids = new Set([...data.triage, ...data.running, ...data.resolved, ...data.callbackPending].map((c) => c.id));
      if (data.loaded) for (const id of ids) if (!data.seen.has(id)) data.fresh.add(id);
      data.seen = ids;
      data.loaded = true;
      data.error = null;
    } catch (err) {
      data.error = err;
    } finally {
      data.loading = null;
    }
    emit("queues-updated");
  })();
  return data.loading;
}

/** Cases of one queue (sorted as shown), and whether the server had more than one page. */
export function queueCases(id, now = new Date()) {
  const cal = store.calendar;
  const withStatus = (c) => ({ ...c, _deadline: deadlineStatus(c, cal, now) });
  const result = queueCasesUnfiltered(id, withStatus);
  return { ...result, cases: result.cases.filter(passesFilter) };
}

function queueCasesUnfiltered(id, withStatus) {
  const byDeadline = (a, b) => (a._deadline.remaining ?? Infinity) - (b._deadline.remaining ?? Infinity);
  const byReported = (a, b) => String(b.reported_at).localeCompare(String(a.reported_at));
  switch (id) {
    case "triage":
      return { cases: data.triage.map(withStatus).sort(byReported), more: data.more.triage };
    case "dispatched":
      return { cases: data.running.filter((c) => c.state === "dispatched").map(withStatus).sort(byDeadline),
        more: data.more.running };
    case "handling":
      return { cases: data.running.filter((c) => ["accepted", "reopened"].includes(c.state)).map(withStatus)
        .sort(byDeadline), more: data.more.running };
    case "due_soon":
      return { cases: data.running.map(withStatus).filter((c) => c._deadline.kind === "soon").sort(byDeadline),
        more: data.more.running };
    case "overdue":
      return { cases: [...data.running, ...data.triage].map(withStatus).filter((c) => c._deadline.kind === "over")
        .sort(byDeadline), more: data.more.running };
    case "verify":
      return { cases: data.resolved.map(withStatus).sort(byReported), more: data.more.resolved };
    case "callback":
      return { cases: data.callbackPending.map(withStatus).sort(byReported), more: data.more.callback };
    default:
      return { cases: [], more: false };
  }
}

const countText = (q) => (q.more ? `${q.cases.length}+` : String(q.cases.length));

function caseRow(c, queueId) {
  const reason = c.triage_reason ? label(TRIAGE_LABELS, c.triage_reason) : null;
  const d = c._deadline;
  const where = [c.township && divisionName(c.township), c.village && divisionName(c.village)].filter(Boolean).join(" ");
  const cells = [
    h("td", {},
      h("div", {}, label(SOURCE_LABELS, c.source), " ", h("span", { class: "mono" }, c.source_id)),
      c.urgency && c.urgency !== "normal" ? h("span", { class: `badge ${c.urgency}` }, label(URGENCY_LABELS, c.urgency)) : null,
      kindBadge(c)),
    h("td", {}, c.matter ? matterName(c.matter) : h("span", { class: "muted" }, "未定性")),
    h("td", {}, where || h("span", { class: "muted" }, "未定位")),
    queueId === "triage"
      ? h("td", {}, reason ? h("span", { class: "badge reason", "data-reason": c.triage_reason }, reason) : "—")
      : h("td", {}, c.unit ? unitName(c.unit) : "—"),
    h("td", { class: "nowrap" }, fmtShort(c.reported_at)),
    h("td", {}, h("span", { class: `countdown ${d.kind}` }, d.text)),
    h("td", {}, h("span", { class: `badge state-${c.state}` }, label(STATE_LABELS, c.state))),
  ];
  const row = h("tr", { "data-case-id": c.id, tabindex: 0,
    onclick: () => { location.hash = `#/case/${c.id}`; },
    onkeydown: (e) => { if (e.key === "Enter") location.hash = `#/case/${c.id}`; } }, ...cells);
  if (data.fresh.has(c.id)) row.classList.add("fresh");
  return row;
}

function feedList() {
  if (!store.feed.length) return h("div", { class: "empty small" }, "等待案件动态…");
  return h("ul", { class: "feed" }, store.feed.slice(0, 40).map((e) => h("li", {
    "data-case-id": e.case_id,
    onclick: () => { location.hash = `#/case/${e.case_id}`; },
  },
  h("time", {}, fmtShort(e.occurred_at).slice(6)),
  h("strong", {}, EVENT_LABELS[e.event_type] || e.event_type), " ",
  e.matter ? matterName(e.matter) : "", " ",
  h("span", { class: "muted" }, e.township ? divisionName(e.township) : ""),
  e.unit ? h("div", { class: "small muted" }, `→ ${unitName(e.unit)}`) : null)));
}

/** Render the queues view into `root` with `queueId` selected; returns a disposer. */
export function renderQueues(root, queueId) {
  const me = store.me;
  const queues = visibleQueues(me);
  const current = queues.find((q) => q.id === queueId) || queues[0];
  const previousCounts = new Map();

  const tabs = h("div", { class: "tabs", role: "tablist" });
  const note = h("div", { class: "queue-note" });
  const body = h("div", { class: "table-scroll" });
  const feed = h("div", {});
  mount(root, h("div", { class: "queues" },
    h("section", { class: "card", "aria-label": "案件队列" }, tabs, note, filterBar(SOURCE_LABELS, () => draw()), body),
    h("aside", { class: "card", "aria-label": "实时动态" },
      h("div", { class: "card-head" }, h("h2", {}, "实时动态"), h("span", { class: "spacer" }),
        h("span", { class: "small muted" }, "事件流")),
      feed)));

  function draw() {
    const now = new Date();
    mount(tabs, queues.map((q) => {
      const content = queueCases(q.id, now);
      const count = data.loaded ? countText(content) : "…";
      const tab = h("button", {
        type: "button", class: `tab${q.id === current.id ? " active" : ""}`, role: "tab",
        "data-queue": q.id, "data-tone": q.tone || null, "aria-selected": q.id === current.id ? "true" : "false",
        onclick: () => { location.hash = `#/queues/${q.id}`; },
      }, q.label, h("span", { class: "count", "data-count": data.loaded ? content.cases.length : "" }, count));
      const before = previousCounts.get(q.id);
      if (before !== undefined && before !== count) tab.classList.add("bump");
      previousCounts.set(q.id, count);
      return tab;
    }));
    mount(note, current.note);
    if (data.error && !data.loaded) {
      mount(body, h("div", { class: "error-box" }, `队列加载失败：${data.error.message}`));
    } else if (!data.loaded) {
      mount(body, h("div", { class: "empty" }, "正在加载…"));
    } else {
      const { cases, more } = queueCases(current.id, now);
      const unitHead = current.id === "triage" ? "转人工原因" : "承办单位";
      mount(body, cases.length
        ? h("table", { class: "grid", "data-queue-table": current.id },
          h("thead", {}, h("tr", {}, ["案件", "事项", "位置", unitHead, "上报时间", "办结时限", "状态"]
            .map((t) => h("th", {}, t)))),
          h("tbody", {}, cases.map((c) => caseRow(c, current.id))))
        : h("div", { class: "empty", "data-empty": current.id }, "此队列暂无案件"),
      more ? h("div", { class: "queue-note" }, `仅显示最近 ${LIMIT} 件，请使用筛选缩小范围。`) : null,
      data.error ? h("div", { class: "error-box" }, `刷新失败：${data.error.message}`) : null);
    }
    mount(feed, feedList());
    data.fresh.clear();
  }

  const disposers = [
    on("queues-updated", draw),
    on("feed-updated", () => mount(feed, feedList())),
    on("tick", draw),
  ];
  draw();
  if (!data.loaded) reloadQueues();
  return () => disposers.forEach((d) => d());
}

/** Wire the stream to the queues: reload (debounced) on every case event. */
export function followStream() {
  const reload = debounce(() => reloadQueues(), 250);
  return [on("case-event", reload), on("stream-live", reload)];
}

export function resetQueues() {
  Object.assign(data, {
    loaded: false, loading: null, error: null, triage: [], running: [], resolved: [], callbackPending: [], more: {},
    seen: new Set(), fresh: new Set(),
  });
}
