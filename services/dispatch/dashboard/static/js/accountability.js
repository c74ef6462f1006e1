// The 监督问责 view (accountability report): for a chosen period, who let cases slip — repeated
// overdue, rejections ruled invalid, whistles not answered, 督办 not acted on, repeated reopen or
// rework — each line linking to its cases; then the joint-operation units that did not confirm
// (联合执法未报到: absent or late, per unit, each linking to its operations and their cases); and the
// xlsx download. Data from the metrics service through /dashboard/api/metrics/… (the township scope
// is applied there).

import { api, filenameOf, metricsPath } from "./api.js";
import { fmtDateTime, h, mount, saveBlob, toast } from "./dom.js";
import { divisionName, unitName } from "./jurisdiction.js";
import { periodChoices } from "./perf.js";

const NOT_COVERED = { joint_operations: "联合执法未报到：平台尚未接入联合执法，本项暂不统计" };
const JOINT_KINDS = new Set(["operation_absent", "operation_late"]);

function caseLinks(cases) {
  return cases.map((id, i) => [i ? "、" : "",
    h("a", { href: `#/case/${encodeURIComponent(id)}`, "data-case": id }, id.slice(0, 8))]);
}

function operationItem(op) {
  return h("li", { "data-operation": op.operation_id },
    h("a", { href: `#/forces/${encodeURIComponent(op.operation_id)}`, title: op.operation_id },
      `联合执法 ${op.operation_id.slice(0, 8)}`),
    ` · ${fmtDateTime(op.starts_at)} – ${fmtDateTime(op.ends_at)} · 牵头 ${unitName(op.lead_unit)}`,
    op.cases.length ? [" · 案件 ", caseLinks(op.cases)] : " · 无关联案件");
}

function jointTable(report) {
  const rows = (report.findings || []).filter((f) => JOINT_KINDS.has(f.kind));
  const head = h("h3", { style: "margin:16px 0 8px" }, "联合执法未报到");
  if ((report.not_covered || []).includes("joint_operations")) return null;
  if (!rows.length) return [head, h("div", { class: "empty", "data-empty": "joint-operations" }, "本期无联合执法未报到")];
  return [head, h("div", { class: "table-scroll", style: "max-height:none" }, h("table", { class: "grid", "data-table": "joint-operations" },
    h("thead", {}, h("tr", {},
      h("th", {}, "事项"), h("th", {}, "单位"), h("th", {}, "乡镇"), h("th", { class: "num" }, "次数"), h("th", {}, "联合执法及关联案件"))),
    h("tbody", {}, rows.map((f) => h("tr", { "data-kind": f.kind, "data-unit": f.unit || "", style: "cursor:default" },
      h("td", {}, f.label),
      h("td", {}, f.unit ? unitName(f.unit) : "—"),
      h("td", {}, f.township ? divisionName(f.township) : "—"),
      h("td", { class: "num" }, f.count),
      h("td", { class: "small" }, h("ul", { style: "margin:0;padding-left:16px" }, (f.operations || []).map(operationItem))))))))];
}

function findingsTable(report) {
  const rows = (report.findings || []).filter((f) => !JOINT_KINDS.has(f.kind));
  const joint = (report.findings || []).length > rows.length;
  if (!rows.length) return h("div", { class: "empty", "data-empty": "accountability" }, joint ? "本期无案件类问责事项" : "本期无问责事项");
  return h("div", { class: "table-scroll", style: "max-height:none" }, h("table", { class: "grid", "data-table": "accountability" },
    h("thead", {}, h("tr", {},
      h("th", {}, "问责事项"), h("th", {}, "单位/部门"), h("th", {}, "乡镇"), h("th", { class: "num" }, "案件数"), h("th", {}, "案件"))),
    h("tbody", {}, rows.map((f) => h("tr", { "data-kind": f.kind, "data-unit": f.unit || "", style: "cursor:default" },
      h("td", {}, f.label),
      h("td", {}, f.unit ? unitName(f.unit) : "—"),
      h("td", {}, f.township ? divisionName(f.township) : "—"),
      h("td", { class: "num" }, f.count),
      h("td", { class: "small" }, caseLinks(f.cases)))))));
}

/** Render the accountability view into `root`; returns a disposer. */
export function renderAccountability(root) {
  const periods = periodChoices();
  const periodSelect = h("select", { id: "acc-period" }, periods.map((p) => h("option", { value: p.id }, p.label)));
  periodSelect.value = periods[1].id; // last month: the usual question
  const download = h("button", { type: "button", class: "btn", "data-download": "xlsx" }, "导出 Excel（xlsx）");
  const title = h("h2", {}, "监督问责");
  const host = h("div", { class: "card-body" }, h("div", { class: "empty" }, "正在加载…"));
  const notes = h("div", { class: "small muted", style: "margin-top:8px" });
  let disposed = false;
  let generation = 0;

  mount(root,
    h("section", { class: "card" }, h("div", { class: "card-body perf-controls" },
      h("div", {}, h("label", { for: "acc-period" }, "周期"), periodSelect),
      h("div", { style: "min-width:0" }, download),
      h("div", { class: "small muted", style: "min-width:0;flex:1;text-align:right" },
        "事项按发生时间归入周期；已签发周期为冻结数据"))),
    h("section", { class: "card", "data-card": "accountability" }, h("div", { class: "card-head" }, title), host, notes));

  async function load() {
    const mine = ++generation;
    const period = periodSelect.value;
    mount(host, h("div", { class: "empty" }, "正在加载…"));
    try {
      const report = await api(metricsPath("v1/accountability"), { query: { period } });
      if (disposed || mine !== generation) return;
      mount(title, `监督问责 · ${report.period}`,
        report.signed_off ? h("span", { class: "badge state-closed", style: "margin-left:8px" }, "已签发") : null);
      mount(host, findingsTable(report), jointTable(report));
      mount(notes, (report.not_covered || []).map((k) => h("div", {}, NOT_COVERED[k] || k)));
    } catch (err) {
      if (!disposed && mine === generation) mount(host, h("div", { class: "error-box" }, `加载失败：${err.message}`));
    }
  }

  download.addEventListener("click", async () => {
    const period = periodSelect.value;
    download.disabled = true;
    try {
      const response = await api(metricsPath(`v1/accountability/${encodeURIComponent(period)}.xlsx`), { raw: true });
      saveBlob(await response.blob(), filenameOf(response, `accountability-${period}.xlsx`));
      toast("已开始下载", "ok");
    } catch (err) {
      toast(`导出失败：${err.message}`, "error");
    } finally {
      download.disabled = false;
    }
  });
  periodSelect.addEventListener("change", load);
  load();
  return () => { disposed = true; };
}
