// The case view (案件详情): source record (caller masked), map, routing explanation, timeline,
// the deadline counted down in working time, and the actions the signed-in role may take.
// Reloads itself when the stream reports a change to this case.

import { api } from "./api.js";
import { assignPanel } from "./assign.js";
import { debounce, fmtDateTime, h, maskPhones, mount } from "./dom.js";
import { performAction } from "./forms.js";
import { divisionName, matterName, unitName } from "./jurisdiction.js";
import {
  APPEAL_LABELS, BASIS_LABELS, CHANNEL_LABELS, DECIDED_BY_LABELS, EVENT_LABELS, REPORTER_LABELS, ROLE_LABELS,
  SATISFACTION_LABELS, SOURCE_LABELS, STATE_LABELS, TRIAGE_LABELS, URGENCY_LABELS, label,
} from "./labels.js";
import { caseMap } from "./map.js";
import { showsSuggestions, suggestPanel } from "./suggest.js";
import { actionsFor } from "./rules.js";
import { sourceExtras } from "./sources.js";
import { on, store } from "./store.js";
import { deadlineStatus } from "./worktime.js";

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [
    h("dt", {}, k), h("dd", {}, v === null || v === "" ? "—" : v),
  ]));
}

function card(name, title, ...body) {
  return h("section", { class: "card", "data-card": name },
    h("div", { class: "card-head" }, h("h2", {}, title)),
    h("div", { class: "card-body" }, ...body));
}

/** 来电人 as dispatch sends it (masked phone and the anonymous flag; the hash never leaves dispatch). */
function callerText(incident) {
  const caller = incident?.caller;
  if (!caller) return null;
  if (caller.anonymous) return "匿名来电";
  return caller.phone_masked ? `${caller.phone_masked}（已脱敏）` : "未留电话";
}

function sourceCard(d) {
  const inc = d.incident || {};
  const caller = callerText(inc);
  return card("source", "来源记录",
    facts([
      ["来源", label(SOURCE_LABELS, d.source)],
      ["编号", h("span", { class: "mono" }, d.source_id)],
      ["渠道", inc.channel ? label(CHANNEL_LABELS, inc.channel) : null],
      ["诉求类型", inc.appeal_type ? label(APPEAL_LABELS, inc.appeal_type) : undefined],
      ["上报人", inc.reporter_kind ? label(REPORTER_LABELS, inc.reporter_kind) : null],
      ["来电人", caller === null ? undefined : h("span", { "data-caller": "masked" }, caller)],
      ["网格员", inc.worker_id ? h("span", { class: "mono" }, inc.worker_id) : undefined],
      ["上报时间", fmtDateTime(d.reported_at)],
      ["紧急程度", label(URGENCY_LABELS, d.urgency)],
      ["来源分类", inc.category_name || inc.category_key || null],
      ["地址", maskPhones(inc.address) || null],
    ]),
    inc.title ? h("div", { style: "margin-top:8px;font-weight:600" }, maskPhones(inc.title)) : null,
    h("div", { class: "desc", "data-description": "" }, maskPhones(inc.description) || "（无描述）"),
    sourceExtras(d),
    (inc.attachments || []).length ? h("div", { class: "small muted", style: "margin-top:6px" },
      `附件 ${inc.attachments.length} 个（内网存储）`) : null,
    (d.duplicates || []).length ? h("div", { class: "small", style: "margin-top:6px" },
      `并入本案的重复件：${d.duplicates.length} 件`) : null,
    d.merged_into ? h("div", { class: "small" }, "本件已并入 ", h("a", { href: `#/case/${d.merged_into}` }, "首件")) : null);
}

function explanationCard(d) {
  const ex = d.explanation || {};
  const text = d.explanation_zh || ex.explanation_zh || "";
  const steps = text.replace(/。$/, "").split("；").filter(Boolean);
  const candidates = ex.candidates || [];
  const manual = ex.manual_decisions || [];
  const redispatches = ex.redispatches || [];
  return card("explanation", "派遣说明",
    steps.length ? h("ol", { class: "explain" }, steps.map((s) => h("li", {}, s))) : h("div", { class: "muted" }, "无"),
    facts([
      ["决策依据", d.decided_by ? label(DECIDED_BY_LABELS, d.decided_by) : null],
      ["命中规则", d.rule_id ? h("span", { class: "mono" }, d.rule_id) : null],
      ["数据版本", `辖区 v${d.jurisdiction_version ?? "—"} / 规则 r${d.rules_version ?? "—"}`],
      ["转人工", d.triage_reason ? label(TRIAGE_LABELS, d.triage_reason) : undefined],
    ]),
    candidates.length ? [h("h3", { style: "margin-top:8px" }, "候选单位（按顺序）"),
      h("ul", { class: "candidates" }, candidates.map((c, i) => h("li", {},
        `${i + 1}. ${unitName(c.unit)}`, c.exists === false ? "（不存在）" : "",
        h("div", { class: "small muted" }, c.why_zh || ""))))] : null,
    redispatches.map((r) => h("div", { class: "small" }, `退单后再派遣：${unitName(r.unit)}（${fmtDateTime(r.at)}）`)),
    manual.map((m) => h("div", { class: "small" },
      `人工派遣：${unitName(m.unit)}，${m.reason || ""}（${label(ROLE_LABELS, m.role)} ${m.by || ""}，${fmtDateTime(m.at)}）`)));
}

function actorText(e) {
  if (e.actor_role === "system") {
    if ((e.actor_id || "").startsWith("intake:")) return "受理系统";
    return "系统";
  }
  const who = label(ROLE_LABELS, e.actor_role);
  if (e.actor_unit) return `${who} · ${unitName(e.actor_unit)}`;
  return e.actor_id ? `${who} · ${e.actor_id}` : who;
}

function timelineDetail(e) {
  const body = e.body || {};
  const bits = [];
  if (body.unit && e.event_type !== "case.rejection_ruled") bits.push(`单位：${unitName(body.unit)}`);
  if (body.department) bits.push(`部门：${unitName(body.department)}`);
  if (body.matter) bits.push(`事项：${matterName(body.matter)}`);
  if (body.new_deadline) bits.push(`申请延至：${fmtDateTime(body.new_deadline)}`);
  if (body.approved !== undefined) bits.push(body.approved ? "同意" : "不同意");
  if (body.valid !== undefined) bits.push(body.valid ? "退单有效" : "退单无效");
  if (body.passed !== undefined) bits.push(body.passed ? "核查通过" : "核查不通过");
  if (body.satisfaction) bits.push(`满意度：${label(SATISFACTION_LABELS, body.satisfaction)}`);
  if (body.solved !== undefined) bits.push(body.solved ? "已解决" : "未解决");
  if (e.changes?.deadline && e.event_type !== "case.reported") bits.push(`办结期限：${fmtDateTime(e.changes.deadline)}`);
  return bits.join("；");
}

function timelineCard(entries) {
  const sorted = [...entries].sort((a, b) => a.version - b.version);
  return card("timeline", `时间线（${sorted.length}）`,
    sorted.length ? h("ol", { class: "timeline", "data-timeline": "" }, sorted.map((e) => {
      const system = e.actor_role === "system";
      const warn = ["case.overdue", "case.rejected", "case.triage_required", "case.escalated"].includes(e.event_type);
      const change = e.previous_state && e.previous_state !== e.state
        ? `${label(STATE_LABELS, e.previous_state)} → ${label(STATE_LABELS, e.state)}` : label(STATE_LABELS, e.state);
      const detail = timelineDetail(e);
      return h("li", { class: warn ? "warn" : system ? "sys" : "", "data-event": e.event_type },
        h("div", { class: "when" }, fmtDateTime(e.occurred_at), " · ", actorText(e)),
        h("div", { class: "what" }, EVENT_LABELS[e.event_type] || e.event_type,
          h("span", { class: "small muted" }, `　${change}`)),
        detail ? h("div", { class: "note" }, detail) : null,
        e.note ? h("div", { class: "note" }, e.note in TRIAGE_LABELS ? `原因：${TRIAGE_LABELS[e.note]}` : maskPhones(e.note))
          : null);
    })) : h("div", { class: "muted" }, "暂无记录"));
}

function statusCard(d) {
  const s = d.snapshot || {};
  const status = deadlineStatus(d, store.calendar);
  const filled = status.fraction === null || status.fraction === undefined ? 0 : Math.min(1, status.fraction);
  const pending = s.extension_pending;
  const escalation = s.escalation;
  return card("status", "办理状态",
    h("div", { class: `big-countdown countdown ${status.kind}`, "data-countdown": status.kind, "data-live-countdown": "" },
      status.text),
    d.deadline && !status.finished ? h("div", { class: `progress ${status.kind}`, title: "剩余时间占比" },
      h("span", { style: `width:${(filled * 100).toFixed(0)}%` })) : null,
    h("div", { style: "height:8px" }),
    facts([
      ["状态", h("span", { class: `badge state-${d.state}` }, label(STATE_LABELS, d.state))],
      ["主办单位", d.unit ? unitName(d.unit) : null],
      ["协办单位", (d.cohandlers || []).length ? d.cohandlers.map(unitName).join("、") : null],
      ["事项", d.matter ? `${matterName(d.matter)}（${d.matter}）` : "未定性"],
      ["位置", [d.township, d.village, d.grid].filter(Boolean).map(divisionName).join(" / ") || "未定位"],
      ["办结期限", d.deadline ? `${fmtDateTime(d.deadline)}${d.provisional ? "（日历暂定）" : ""}` : null],
      ["计时口径", d.time_basis ? label(BASIS_LABELS, d.time_basis) : null],
      ["签收期限", d.accept_deadline ? fmtDateTime(d.accept_deadline) : undefined],
      ["退单时限", d.reject_window_ends_at ? fmtDateTime(d.reject_window_ends_at) : undefined],
      ["延期申请", pending ? `申请延至 ${fmtDateTime(pending.new_deadline)}：${pending.reason}` : undefined],
      ["吹哨", escalation ? `${unitName(escalation.department)}${escalation.reported_in_at ? "（已报到）" : "（待报到）"}`
        : undefined],
      ["退单", (s.rejections || []).length ? `${s.rejections.length} 次：${s.rejections.map((r) => unitName(r.unit)).join("、")}`
        : undefined],
      ["督办", s.supervise_count ? `${s.supervise_count} 次` : undefined],
      ["回访", s.satisfaction ? label(SATISFACTION_LABELS, s.satisfaction) : undefined],
    ]));
}

function actionsCard(d, { withAssignPanel, onDone }) {
  const list = actionsFor(d).filter((a) => !(withAssignPanel && a.action === "assign"));
  if (!list.length) {
    return card("actions", "可执行操作", h("div", { class: "muted" }, `${label(ROLE_LABELS, store.me.role)}在本案无可执行操作`));
  }
  return card("actions", "可执行操作", h("div", { class: "actions" }, list.map((a) => h("div", {
    class: "action", "data-action": a.action, "data-allowed": String(a.allowed),
  },
  h("button", {
    type: "button", class: `btn ${a.allowed ? "" : "btn-secondary"}`, disabled: !a.allowed,
    title: a.detail || `执行${a.label}`,
    onclick: async () => {
      if (a.action === "assign") { location.hash = `#/case/${d.id}`; return; }
      const answer = await performAction(d, a.action);
      if (answer) onDone();
    },
  }, a.label),
  h("span", { class: "why" }, a.allowed ? "可执行" : a.reason)))));
}

/** Render the case view for `caseId` into `root`; returns a disposer. */
export function renderCase(root, caseId) {
  let detail = null;
  let timeline = [];
  let error = null;
  let disposed = false;

  async function load() {
    try {
      const [d, t] = await Promise.all([api(`/v1/cases/${caseId}`), api(`/v1/cases/${caseId}/timeline`)]);
      detail = d;
      timeline = t.entries || [];
      error = null;
    } catch (err) {
      error = err;
    }
    if (!disposed) draw();
  }

  function draw() {
    if (error && !detail) {
      mount(root, h("div", { class: "card" }, h("div", { class: "card-body" },
        h("a", { href: "#/queues" }, "← 返回队列"),
        h("div", { class: "error-box", style: "margin-top:8px" }, `无法打开案件：${error.message}`))));
      return;
    }
    if (!detail) {
      mount(root, h("div", { class: "empty" }, "正在加载案件…"));
      return;
    }
    const d = detail;
    const canAssign = (d.allowed_actions || []).includes("assign");
    const status = deadlineStatus(d, store.calendar);
    const title = d.incident?.title || `${d.matter ? matterName(d.matter) : "未定性事项"} · ${d.source_id}`;
    mount(root,
      h("div", { class: "case-head", "data-case": d.id, "data-state": d.state, "data-version": d.version },
        h("a", { href: "#/queues", class: "btn btn-secondary btn-small" }, "← 返回队列"),
        h("h1", {}, maskPhones(title)),
        h("span", { class: `badge state-${d.state}`, "data-case-state": d.state }, label(STATE_LABELS, d.state)),
        d.urgency !== "normal" ? h("span", { class: `badge ${d.urgency}` }, label(URGENCY_LABELS, d.urgency)) : null,
        d.overdue ? h("span", { class: "badge reason" }, "已超期") : null,
        h("span", { class: "spacer" }),
        h("span", { class: "small muted" }, `${label(SOURCE_LABELS, d.source)} ${d.source_id} · 版本 ${d.version}`),
        h("span", { class: `countdown ${status.kind}`, "data-live-countdown": "" }, status.text)),
      h("div", { class: "case-grid" },
        h("div", {}, sourceCard(d), explanationCard(d)),
        h("div", {}, card("map", "案件位置", caseMap(d)), timelineCard(timeline)),
        h("div", {},
          statusCard(d),
          canAssign ? assignPanel(d, { onDone: load }) : null,
          showsSuggestions(d, store.me) ? suggestPanel(d, { onDone: load }) : null,
          actionsCard(d, { withAssignPanel: canAssign, onDone: load }))));
  }

  const reload = debounce(load, 200);
  const disposers = [
    on("case-event", (e) => { if (e.case_id === caseId) reload(); }),
    on("tick", () => {
      if (!detail) return;
      const status = deadlineStatus(detail, store.calendar);
      for (const el of root.querySelectorAll("[data-live-countdown]")) {
        el.textContent = status.text;
        el.classList.remove("ok", "soon", "over", "none");
        el.classList.add(status.kind);
      }
    }),
    on("jurisdiction-loaded", () => { if (detail) draw(); }),
  ];
  draw();
  load();
  return () => { disposed = true; disposers.forEach((f) => f()); };
}
