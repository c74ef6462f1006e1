// The approval and alarm sources on the dashboard (审批办件 / 监测告警): the queue filter by source and
// kind, the kind badge, the case view's approval and alarm facts (snapshot picture, 告警次数), and
// the forms of 不予立案/作废, 误报 and 检查结果. Presentation only: the server decides what is allowed.

import { fmtDateTime, h } from "./dom.js";

export const KIND_LABELS = { incident: "事件", inspection: "监管任务" };

export const INVALID_REASON_LABELS = {
  duplicate_elsewhere: "重复",
  out_of_scope: "非管辖",
  not_a_problem: "不属实",
  insufficient: "信息不全",
  false_alarm: "误报（监测告警）",
};

export const INSPECTION_LABELS = { compliant: "合格", rectify: "责令整改", case_opened: "立案查处" };

const RESULT_LABELS = {
  approved: "准予许可", approved_with_conditions: "附条件准予（承诺制）", denied: "不予许可", revoked: "撤销",
};
const DEVICE_LABELS = {
  video: "视频AI", water_level: "水位", noise: "噪声", smoke: "烟感", manhole: "井盖", air: "空气质量", other: "其他",
};
const LEVEL_LABELS = { info: "提示", warning: "预警", alarm: "告警", critical: "严重" };

/** Forms of the new actions (merged into rules.FORMS). */
export const SOURCE_FORMS = {
  mark_invalid: {
    confirm: "作废后案件结案，不计入任何单位指标，只计入上报人的有效上报率（误报计入设备误报率）。",
    fields: [
      { name: "reason", label: "作废原因", type: "select", required: true, options: Object.entries(INVALID_REASON_LABELS) },
      { name: "note", label: "说明", type: "textarea" },
    ],
  },
  mark_false_alarm: { fields: [{ name: "note", label: "误报说明", type: "textarea" }] },
  record_inspection: {
    fields: [
      { name: "result", label: "检查结果", type: "select", required: true, options: Object.entries(INSPECTION_LABELS) },
      { name: "note", label: "检查情况", type: "textarea", required: true },
      { name: "enforcement_case_no", label: "执法案件编号（立案查处时填写）", type: "text" },
      { name: "follow_up_within_days", label: "复查时限（工作日，责令整改时可填）", type: "text" },
    ],
  },
};

/** The queue filter (来源 / 类型), kept across redraws. */
export const filter = { source: "", kind: "" };

/** Whether a listed case passes the queue filter. */
export const passesFilter = (c) => (!filter.source || c.source === filter.source) && (!filter.kind || c.kind === filter.kind);

/** The filter controls above a queue; `onChange` redraws. */
export function filterBar(sourceLabels, onChange) {
  const select = (name, title, options) => h("label", { class: "small" }, `${title} `,
    h("select", {
      "data-filter": name,
      onchange: (e) => { filter[name] = e.target.value; onChange(); },
    }, [["", "全部"], ...options].map(([value, text]) => h("option", { value, selected: filter[name] === value || null }, text))));
  return h("div", { class: "queue-filter", style: "display:flex;gap:12px;margin:6px 0" },
    select("source", "来源", Object.entries(sourceLabels)),
    select("kind", "类型", Object.entries(KIND_LABELS)));
}

/** A badge for cases that are not plain incidents (监管任务, 告警 ×N). */
export function kindBadge(c) {
  if (c.kind === "inspection") return h("span", { class: "badge", "data-kind": "inspection" }, "监管任务");
  if (c.source === "alarm" && c.occurrences > 1) {
    return h("span", { class: "badge", "data-occurrences": String(c.occurrences) }, `告警 ×${c.occurrences}`);
  }
  return null;
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [
    h("dt", {}, k), h("dd", {}, v),
  ]));
}

function approvalFacts(d, a) {
  const applicant = a.applicant || {};
  const who = applicant.kind === "org" ? `${applicant.name || ""}（${applicant.credit_code || "—"}）`
    : `个人申请人（证件 ${applicant.credit_code || "—"}，已脱敏）`;
  return h("div", { "data-approval": a.approval_no },
    h("h3", { style: "margin-top:8px" }, "审批办件"),
    facts([
      ["办件编号", h("span", { class: "mono" }, a.approval_no)],
      ["审批事项", `${a.item_name || ""}（${a.item_code}）`],
      ["审批结果", RESULT_LABELS[a.result] || a.result],
      ["办结时间", fmtDateTime(a.approved_at)],
      ["申请人", who],
      ["承诺/条件", a.conditions],
      ["检查结果", d.inspection_result ? INSPECTION_LABELS[d.inspection_result] : undefined],
      ["执法案件编号", d.enforcement_case_no],
      ["整改复查", d.follow_up_case ? h("a", { href: `#/case/${d.follow_up_case}`, "data-follow-up": "" }, "复查任务") : undefined],
      ["跟进", d.follow_up_of ? h("a", { href: `#/case/${d.follow_up_of}` }, "原监管任务") : undefined],
    ]));
}

function alarmFacts(d, a) {
  return h("div", { "data-alarm": a.alarm_id },
    h("h3", { style: "margin-top:8px" }, "监测告警"),
    facts([
      ["设备", h("span", { class: "mono" }, `${a.device_id}（${DEVICE_LABELS[a.device_kind] || a.device_kind}）`)],
      ["告警类型", h("span", { class: "mono" }, a.alarm_type)],
      ["级别", LEVEL_LABELS[a.level] || a.level],
      ["置信度", a.confidence === null || a.confidence === undefined ? undefined : a.confidence.toFixed(2)],
      ["读数/阈值", a.value === null || a.value === undefined ? undefined : `${a.value} / ${a.threshold ?? "—"}`],
      ["告警次数", h("strong", { "data-occurrences": String(d.occurrences || 1) }, `${d.occurrences || 1} 次`)],
      ["恢复时间", a.cleared_at ? fmtDateTime(a.cleared_at) : undefined],
      ["误报", d.false_alarm ? "已标记误报" : undefined],
    ]),
    a.snapshot_url ? h("img", {
      src: a.snapshot_url, alt: "告警抓拍", "data-snapshot": "", loading: "lazy", referrerpolicy: "no-referrer",
      style: "max-width:100%;margin-top:6px;border-radius:4px",
    }) : null);
}

/** The approval or alarm facts of a case, and why the system closed it (自动恢复, 撤销, 作废). */
export function sourceExtras(d) {
  const inc = d.incident || {};
  return [
    d.kind === "inspection" ? h("span", { class: "badge", "data-kind": "inspection" }, "监管任务") : null,
    inc.approval ? approvalFacts(d, inc.approval) : null,
    inc.alarm ? alarmFacts(d, inc.alarm) : null,
    d.invalid_reason ? h("div", { class: "small", "data-invalid": d.invalid_reason },
      `不予立案/作废：${INVALID_REASON_LABELS[d.invalid_reason] || d.invalid_reason}`) : null,
    d.close_reason && !d.invalid_reason ? h("div", { class: "small", "data-close-reason": d.close_reason },
      `系统结案：${d.close_reason}`) : null,
  ];
}
