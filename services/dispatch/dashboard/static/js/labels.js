// Chinese labels of the platform's codes (states, actions, events, roles, reasons …).

export const STATE_LABELS = {
  reported: "已上报",
  dispatched: "已派遣",
  accepted: "已签收",
  resolved: "已办结",
  closed: "已结案",
  rejected: "已退单",
  triage: "待人工分拨",
  reopened: "返工/重办",
};

export const ACTION_LABELS = {
  dispatch: "派遣",
  triage: "转人工分拨",
  assign: "手动派遣",
  accept: "签收",
  reject: "退单",
  request_extension: "延期申请",
  decide_extension: "延期审批",
  rule_rejection: "判定退单",
  reassign: "改派",
  resolve: "办结",
  verify: "核查",
  close: "结案",
  callback: "回访",
  reopen: "重办",
  supervise: "督办",
  escalate: "吹哨",
  report_in: "报到",
  add_cohandler: "增加协办",
  mark_overdue: "超期标记",
  recompute_deadline: "期限重算",
  self_handle: "自办",
  merge: "并案",
  mark_invalid: "不予立案/作废",
  mark_false_alarm: "标记误报",
  record_inspection: "检查结果",
  add_occurrence: "告警合并",
  auto_recover: "自动恢复",
  revoke: "撤销",
};

export const EVENT_LABELS = {
  "case.reported": "立案",
  "case.dispatched": "派遣",
  "case.triage_required": "转人工分拨",
  "case.assigned": "手动派遣",
  "case.accepted": "签收",
  "case.rejected": "退单",
  "case.extension_requested": "延期申请",
  "case.extended": "延期获批",
  "case.extension_denied": "延期未获批",
  "case.rejection_ruled": "判定退单",
  "case.reassigned": "改派",
  "case.resolved": "办结",
  "case.verified": "核查",
  "case.closed": "结案",
  "case.callback_recorded": "回访",
  "case.reopened": "重办",
  "case.supervised": "督办",
  "case.escalated": "吹哨",
  "case.reported_in": "报到",
  "case.cohandler_added": "增加协办单位",
  "case.overdue": "超期",
  "case.deadline_recomputed": "期限重算",
  "case.self_handled": "网格员自办",
  "case.merged": "并案",
  "case.invalidated": "不予立案/作废",
  "case.auto_recovered": "自动恢复",
  "case.false_alarm": "误报",
  "case.occurrence_added": "告警合并",
  "case.inspected": "检查结果",
  "case.revoked": "撤销",
  "case.member_assigned": "派单到人",
};

export const TRIAGE_LABELS = {
  unlocated: "无法定位",
  uncategorised: "无法定性",
  rejected_too_often: "退单次数过多",
  no_candidate_left: "候选单位均已退单",
  no_unit: "承办单位不存在",
  low_confidence: "置信度低，人工复核",
};

export const ROLE_LABELS = {
  admin: "管理员",
  dispatcher: "派遣员",
  township_admin: "乡镇管理员",
  unit: "处置单位",
  hotline: "12345热线",
  system: "系统",
  member: "队员",
};

export const SOURCE_LABELS = {
  12345: "12345热线", cityops: "数字城管", gridworker: "网格员上报", approval: "审批办件", alarm: "监测告警",
};

export const URGENCY_LABELS = { normal: "一般", urgent: "紧急", critical: "特急" };

export const BASIS_LABELS = { working: "工作时", natural: "自然时" };

export const UNIT_KIND_LABELS = {
  township_office: "乡镇内设机构",
  enforcement_team: "综合执法队",
  stationed_agency: "派驻机构",
  county_department: "县级部门",
};

export const DECIDED_BY_LABELS = {
  rule: "派遣规则",
  devolved: "属地下放",
  stationed_agency: "派驻机构",
  county_department: "县级部门（吹哨报到）",
  manual: "人工派遣",
};

export const APPEAL_LABELS = {
  complaint: "投诉", consultation: "咨询", suggestion: "建议", help: "求助", report: "举报", praise: "表扬",
};

export const CHANNEL_LABELS = { phone: "电话", web: "网站", app: "移动端", wechat: "微信", sms: "短信", mail: "信件" };

export const REPORTER_LABELS = {
  caller: "来电人", supervisor: "监督员", public: "公众", leader: "领导交办", media: "媒体", sensor: "感知设备",
  grid_worker: "网格员", approval_system: "审批系统",
};

export const SATISFACTION_LABELS = { satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意" };

export const label = (table, code, fallback) => (code in table ? table[code] : (fallback ?? code ?? "—"));
