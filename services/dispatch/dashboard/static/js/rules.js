// The action buttons of a case and the forms behind them. Presentation only: which actions the
// signed-in token may take, and why not, is the server's answer (services/dispatch/lifecycle.py):
// GET /v1/cases/{id} sends `role_actions` (the actions this role may ever take: one button each),
// `allowed_actions` (enabled now) and `action_reasons` (for a disabled button, the refusal).

import { ACTION_LABELS, SATISFACTION_LABELS } from "./labels.js";
import { fmtDateTime } from "./dom.js";
import { unit } from "./jurisdiction.js";
import { SOURCE_FORMS } from "./sources.js";

const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})/g;
const CODE = /[A-Za-z0-9][A-Za-z0-9_-]*/g;

/**
 * A server refusal as the page shows it: the Chinese half of "中文 / English", ISO times in Beijing
 * time and unit ids as unit names. The full text stays available as the button's tooltip.
 */
export function reasonText(reason) {
  if (!reason) return "";
  const zh = String(reason).split(" / ")[0].trim() || String(reason);
  return zh.replace(ISO_TIME, (iso) => fmtDateTime(iso)).replace(CODE, (code) => unit(code)?.name || code);
}

/**
 * The action buttons for a case detail, in the order the page shows them (that of FORMS): one per
 * action the signed-in role may take, each {action, label, allowed, reason, detail}.
 */
export function actionsFor(detail) {
  const allowed = new Set(detail.allowed_actions || []);
  const reasons = detail.action_reasons || {};
  const order = ["assign", ...Object.keys(FORMS)];
  const rank = (a) => (order.includes(a) ? order.indexOf(a) : order.length);
  return [...(detail.role_actions || [])].sort((a, b) => rank(a) - rank(b)).map((action) => {
    const ok = allowed.has(action);
    const full = ok ? null : reasons[action] || "当前不可执行";
    return { action, label: ACTION_LABELS[action] || action, allowed: ok, reason: full && reasonText(full), detail: full };
  });
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
  ...SOURCE_FORMS,
};
