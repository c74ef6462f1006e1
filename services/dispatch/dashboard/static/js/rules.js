// Which lifecycle actions the signed-in role may take on a case, and why not.
//
// The server is the authority: GET /v1/cases/{id} answers `allowed_actions` (what this token may
// do now). A button is enabled exactly when the server lists it. For a disabled button the reason
// comes from the server's `action_reasons` when it sends them, else from this mirror of the
// transition table (services/dispatch/lifecycle.py: role → scope → state → precondition).

import { ACTION_LABELS, STATE_LABELS, SATISFACTION_LABELS } from "./labels.js";
import { unitName } from "./jurisdiction.js";
import { fmtDateTime } from "./dom.js";

const ALL = ["reported", "dispatched", "accepted", "resolved", "closed", "rejected", "triage", "reopened"];
const OPEN = ALL.filter((s) => s !== "closed");
const DISPATCHERS = ["dispatcher", "admin"];

const pendingEscalation = (s) => s.escalation && !s.escalation.reported_in_at;

/** The actions the API exposes, in the order the page shows them, with their rules. */
export const ACTIONS = {
  assign: { roles: DISPATCHERS, from: ["triage", "reported"] },
  accept: { roles: ["unit"], from: ["dispatched"] },
  reject: {
    roles: ["unit"],
    from: ["dispatched", "accepted"],
    pre: (s, now) => (s.reject_window_ends_at && now > new Date(s.reject_window_ends_at)
      ? `退单时限已过（${fmtDateTime(s.reject_window_ends_at)}）` : null),
  },
  request_extension: {
    roles: ["unit"],
    from: ["accepted"],
    pre: (s) => (s.extension_pending ? "已有待审批的延期申请" : !s.deadline ? "案件没有办结期限" : null),
  },
  resolve: { roles: ["unit"], from: ["accepted", "reopened"] },
  decide_extension: {
    roles: DISPATCHERS, from: ["accepted"], pre: (s) => (s.extension_pending ? null : "没有待审批的延期申请"),
  },
  rule_rejection: {
    roles: DISPATCHERS,
    from: ALL.filter((x) => x !== "reported"),
    pre: (s) => ((s.rejections || []).some((r) => r.valid === null || r.valid === undefined) ? null : "没有待判定的退单"),
  },
  reassign: { roles: DISPATCHERS, from: ["dispatched", "accepted", "rejected", "reopened", "triage"] },
  verify: { roles: DISPATCHERS, from: ["resolved"] },
  close: { roles: DISPATCHERS, from: ["resolved"] },
  callback: {
    roles: ["hotline", ...DISPATCHERS],
    from: ["closed"],
    pre: (s) => (s.source !== "12345" ? "只有 12345 热线案件回访"
      : s.satisfaction ? `本次结案已回访（${SATISFACTION_LABELS[s.satisfaction] || s.satisfaction}）` : null),
  },
  reopen: {
    roles: DISPATCHERS, from: ["closed"],
    pre: (s) => (s.satisfaction === "unsatisfied" ? null : "只有回访不满意的案件可以重办"),
  },
  supervise: { roles: DISPATCHERS, from: OPEN },
  escalate: {
    roles: ["township_admin", "admin"],
    from: OPEN,
    pre: (s) => (pendingEscalation(s) ? `已吹哨${unitName(s.escalation.department)}，尚未报到` : null),
  },
  report_in: {
    roles: ["unit", "admin"], from: ALL, pre: (s) => (pendingEscalation(s) ? null : "没有待报到的吹哨"),
  },
  add_cohandler: { roles: DISPATCHERS, from: OPEN },
};

function scopeRefusal(s, me, action) {
  if (["admin", "hotline", "system"].includes(me.role)) return null;
  if (me.role === "unit") {
    if (action === "report_in") {
      return s.escalation?.department === me.unit ? null : "本单位不是被吹哨的部门";
    }
    if (s.primary_unit === me.unit) return null;
    if ((s.cohandlers || []).includes(me.unit)) return "协办单位只协助办理，不能执行此操作";
    return "本单位不是该案件的主办单位";
  }
  if (me.township !== "*" && me.township !== s.township) return "案件不属于本账号所辖乡镇";
  return null;
}

/** Why `me` may not take `action` on the case snapshot now (null: nothing in the way). */
export function refusal(snapshot, me, action, now = new Date()) {
  const rule = ACTIONS[action];
  if (!rule) return "未知操作";
  if (!rule.roles.includes(me.role)) return `角色无权${ACTION_LABELS[action]}`;
  const scope = scopeRefusal(snapshot, me, action);
  if (scope) return scope;
  if (!rule.from.includes(snapshot.state)) {
    return `案件${STATE_LABELS[snapshot.state] || snapshot.state}，不能${ACTION_LABELS[action]}`;
  }
  return rule.pre ? rule.pre(snapshot, now) : null;
}

/**
 * The action buttons for a case detail: the actions the signed-in role may ever take, each
 * {action, label, allowed, reason}. `allowed` is the server's word.
 */
export function actionsFor(detail, me, now = new Date()) {
  const allowed = new Set(detail.allowed_actions || []);
  const serverReasons = detail.action_reasons || {};
  const snapshot = detail.snapshot || {};
  const out = [];
  for (const [action, rule] of Object.entries(ACTIONS)) {
    if (!rule.roles.includes(me.role)) continue;
    const ok = allowed.has(action);
    let reason = null;
    if (!ok) {
      if (detail.merged_into) reason = "案件已并入其他案件";
      else reason = serverReasons[action] || refusal(snapshot, me, action, now) || "当前不可执行";
    }
    out.push({ action, label: ACTION_LABELS[action], allowed: ok, reason });
  }
  return out;
}

const bool = (yes, no) => ({ type: "bool", options: [["true", yes], ["false", no]] });

/** The fields each action's form asks for (the API's body models). */
export const FORMS = {
  accept: { fields: [], confirm: "确认签收该案件？签收后开始办理计时。" },
  reject: { fields: [{ name: "reason", label: "退单理由", type: "textarea", required: true }] },
  request_extension: {
    fields: [
      { name: "new_deadline", label: "申请延至（北京时间）", type: "datetime", required: true },
      { name: "reason", label: "延期理由", type: "textarea", required: true },
    ],
  },
  resolve: { fields: [{ name: "result", label: "办理结果", type: "textarea", required: true }] },
  decide_extension: {
    fields: [{ name: "approved", label: "审批结果", ...bool("同意延期", "不同意") },
      { name: "note", label: "审批意见", type: "textarea" }],
  },
  rule_rejection: {
    fields: [{ name: "valid", label: "判定结果", ...bool("退单有效", "退单无效（计入退单率）") },
      { name: "note", label: "判定说明", type: "textarea" }],
  },
  reassign: {
    fields: [{ name: "unit", label: "改派至", type: "unit", required: true },
      { name: "reason", label: "改派理由", type: "textarea", required: true }],
  },
  verify: {
    fields: [{ name: "passed", label: "核查结果", ...bool("核查通过（结案）", "核查不通过（返工）") },
      { name: "note", label: "核查意见", type: "textarea" }],
  },
  close: { fields: [{ name: "note", label: "结案说明", type: "textarea" }] },
  callback: {
    fields: [
      { name: "satisfaction", label: "满意度", type: "select", required: true,
        options: Object.entries(SATISFACTION_LABELS) },
      { name: "solved", label: "是否解决", ...bool("已解决", "未解决") },
      { name: "note", label: "回访记录", type: "textarea" },
    ],
  },
  reopen: { fields: [{ name: "reason", label: "重办理由", type: "textarea", required: true }] },
  supervise: { fields: [{ name: "note", label: "督办意见", type: "textarea", required: true }] },
  escalate: {
    fields: [{ name: "department", label: "吹哨部门（县级部门）", type: "department", required: true },
      { name: "reason", label: "吹哨事由", type: "textarea", required: true }],
  },
  report_in: { fields: [{ name: "note", label: "报到说明", type: "textarea" }] },
  add_cohandler: { fields: [{ name: "unit", label: "协办单位", type: "unit", required: true }] },
};
