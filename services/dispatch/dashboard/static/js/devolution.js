// The 下放调整 view: the county's dated devolution list (动态调整), a proposal composed from the matter
// catalogue, and its what-if (模拟调整) over a past period — cases that would move, each unit's and
// each township's load before and after — with the xlsx download. An admin can record the proposal
// as a decision (文号 and the day it applies from). Data: grid's devolution list through the
// same-origin proxy (/dashboard/api/grid/…), the what-if from dispatch itself (POST /v1/whatif).

import { api, gridPath } from "./api.js";
import { beijingToday, h, mount, num, saveBlob, toast } from "./dom.js";
import { allMatters, divisionName, jurisdiction, loadJurisdiction, matterName, townships, unitName } from "./jurisdiction.js";
import { store } from "./store.js";

export const MODE_LABELS = { devolved: "下放", entrusted: "委托", assist: "协助", none: "收回（不下放）" };

const pad = (n) => String(n).padStart(2, "0");
const iso = (y, m, d) => `${y}-${pad(m)}-${pad(d)}`;

/** The previous calendar month in Beijing: [first day, last day] as YYYY-MM-DD. */
export function lastMonth(today = beijingToday()) {
  const year = today.month === 1 ? today.year - 1 : today.year;
  const month = today.month === 1 ? 12 : today.month - 1;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return [iso(year, month, 1), iso(year, month, days)];
}

function select(id, options, value) {
  const el = h("select", { id }, options.map(([v, text]) => h("option", { value: v }, text)));
  if (value !== undefined) el.value = value;
  return el;
}

function table(name, headers, rows, empty) {
  if (!rows.length) return h("div", { class: "empty", "data-empty": name }, empty);
  return h("div", { class: "table-scroll", style: "max-height:none" }, h("table", { class: "grid", "data-table": name },
    h("thead", {}, h("tr", {}, headers.map(([text, cls]) => h("th", { class: cls || null }, text)))),
    h("tbody", {}, rows)));
}

function historyTable(entries) {
  const dated = entries.filter((e) => e.document || e.effective_from || e.effective_to);
  const rows = dated.map((e) => h("tr", { "data-township": e.township, "data-matter": e.matter, style: "cursor:default" },
    h("td", {}, divisionName(e.township)),
    h("td", {}, `${matterName(e.matter)}（${e.matter}）`),
    h("td", { "data-mode": e.mode }, MODE_LABELS[e.mode] || e.mode),
    h("td", {}, e.effective_from || "—"),
    h("td", {}, e.effective_to ? `${e.effective_to} 收回` : "—"),
    h("td", {}, e.document || "—")));
  return [
    table("devolution-history", [["镇街"], ["事项"], ["方式"], ["生效日期"], ["终止日期"], ["文号"]], rows, "暂无带日期的下放记录"),
    h("div", { class: "small muted", style: "margin-top:6px" },
      `另有未注明日期的下放清单 ${entries.length - dated.length} 项（自始有效）`),
  ];
}

function resultView(answer) {
  const moves = answer.moves.map((m) => h("tr", { "data-matter": m.matter, style: "cursor:default" },
    h("td", {}, `${m.matter_name}（${m.matter}）`), h("td", {}, m.from_name), h("td", {}, m.to_name),
    h("td", { class: "num" }, m.cases), h("td", { class: "num" }, num(m.hours))));
  const towns = answer.townships.map((t) => h("tr", {
    "data-township": t.township, "data-over": t.over_threshold ? "true" : "false",
    class: t.over_threshold ? "row-alert" : null, style: "cursor:default",
  },
  h("td", {}, t.name), h("td", { class: "num" }, t.cases_before), h("td", { class: "num" }, t.cases_after),
  h("td", { class: "num" }, num(t.hours_before)), h("td", { class: "num" }, num(t.hours_after)),
  h("td", { class: "num" }, t.growth_pct !== null ? `${num(t.growth_pct)}%` : t.hours_after > 0 ? "新增" : "—"),
  h("td", {}, t.over_threshold ? "超过阈值" : "—")));
  const units = answer.units.filter((u) => u.cases_change || u.hours_change).map((u) => h("tr", {
    "data-unit": u.unit || "", style: "cursor:default",
  },
  h("td", {}, u.unit ? unitName(u.unit) : u.name), h("td", {}, u.township ? divisionName(u.township) : "—"),
  h("td", { class: "num" }, u.cases_before), h("td", { class: "num" }, u.cases_after),
  h("td", { class: "num" }, num(u.hours_before)), h("td", { class: "num" }, num(u.hours_after))));
  return [
    h("p", { "data-summary": "whatif" },
      `期间 ${answer.reported_from} 至 ${answer.reported_to}：案件 ${answer.cases} 件，涉及提案 ${answer.affected_cases} 件，` +
      `改派 ${answer.moved_cases} 件。工时按派遣时限计。`),
    h("h3", {}, "改派（按事项）"),
    table("moves", [["事项"], ["原承办单位"], ["新承办单位"], ["案件数", "num"], ["工时", "num"]], moves, "没有案件会改派"),
    h("h3", {}, `镇街负荷（阈值 ${num(answer.threshold_pct)}%）`),
    table("townships", [["镇街"], ["调整前案件", "num"], ["调整后案件", "num"], ["调整前工时", "num"],
      ["调整后工时", "num"], ["增长", "num"], ["提示"]], towns, "无镇街"),
    h("h3", {}, "负荷变化的单位"),
    table("units", [["单位"], ["镇街"], ["调整前案件", "num"], ["调整后案件", "num"], ["调整前工时", "num"],
      ["调整后工时", "num"]], units, "没有单位的负荷变化"),
  ];
}

/** Render the devolution view into `root`; returns a disposer. */
export function renderDevolution(root) {
  let disposed = false;
  const proposal = [];
  const [from, to] = lastMonth();
  const townSelect = select("dv-township", []);
  const matterSelect = select("dv-matter", []);
  const modeSelect = select("dv-mode", Object.entries(MODE_LABELS), "devolved");
  const add = h("button", { type: "button", class: "btn btn-secondary", "data-action": "add" }, "加入提案");
  const fromInput = h("input", { id: "dv-from", type: "date", value: from });
  const toInput = h("input", { id: "dv-to", type: "date", value: to });
  const threshold = h("input", { id: "dv-threshold", type: "number", min: "0", step: "1", value: "20" });
  const simulate = h("button", { type: "button", class: "btn", "data-action": "simulate" }, "模拟");
  const download = h("button", { type: "button", class: "btn btn-secondary", "data-download": "whatif-xlsx" }, "导出 Excel（xlsx）");
  const proposalHost = h("div", {});
  const resultHost = h("div", { class: "card-body" }, h("div", { class: "empty" }, "组成提案后点击“模拟”"));
  const historyHost = h("div", { class: "card-body" }, h("div", { class: "empty" }, "正在加载…"));
  const documentInput = h("input", { id: "dv-document", type: "text", placeholder: "文号，如 青政发〔2026〕1号" });
  const effective = h("input", { id: "dv-effective", type: "date" });
  const record = h("button", { type: "button", class: "btn", "data-action": "record" }, "登记为调整决定");
  const admin = store.me?.role === "admin";

  mount(root,
    h("section", { class: "card", "data-card": "devolution-history" },
      h("div", { class: "card-head" }, h("h2", {}, "下放清单（动态调整）")), historyHost),
    h("section", { class: "card", "data-card": "proposal" },
      h("div", { class: "card-head" }, h("h2", {}, "调整提案")),
      h("div", { class: "card-body perf-controls" },
        h("div", {}, h("label", { for: "dv-township" }, "镇街"), townSelect),
        h("div", {}, h("label", { for: "dv-matter" }, "事项（事项清单）"), matterSelect),
        h("div", {}, h("label", { for: "dv-mode" }, "方式"), modeSelect),
        h("div", { style: "min-width:0" }, add)),
      h("div", { class: "card-body" }, proposalHost),
      h("div", { class: "card-body perf-controls" },
        h("div", {}, h("label", { for: "dv-from" }, "历史期间自"), fromInput),
        h("div", {}, h("label", { for: "dv-to" }, "至"), toInput),
        h("div", {}, h("label", { for: "dv-threshold" }, "负荷增长阈值（%）"), threshold),
        h("div", { style: "min-width:0" }, simulate), h("div", { style: "min-width:0" }, download)),
      admin ? h("div", { class: "card-body perf-controls", "data-admin": "record" },
        h("div", {}, h("label", { for: "dv-document" }, "文号"), documentInput),
        h("div", {}, h("label", { for: "dv-effective" }, "生效日期（须晚于今日）"), effective),
        h("div", { style: "min-width:0" }, record)) : null),
    h("section", { class: "card", "data-card": "whatif" }, h("div", { class: "card-head" }, h("h2", {}, "模拟结果")), resultHost));

  function fillChoices() {
    mount(townSelect, townships().map((t) => h("option", { value: t.code }, t.name)));
    mount(matterSelect, allMatters().map((m) => h("option", { value: m.code }, `${m.name}（${m.code}）`)));
  }

  function drawProposal() {
    const rows = proposal.map((p, i) => h("tr", { "data-township": p.township, "data-matter": p.matter, style: "cursor:default" },
      h("td", {}, divisionName(p.township)), h("td", {}, `${matterName(p.matter)}（${p.matter}）`),
      h("td", {}, MODE_LABELS[p.mode]),
      h("td", {}, h("button", { type: "button", class: "btn btn-secondary btn-small", "data-remove": String(i),
        onclick: () => { proposal.splice(i, 1); drawProposal(); } }, "移除"))));
    mount(proposalHost, table("proposal", [["镇街"], ["事项"], ["方式"], [""]], rows, "提案为空：选择镇街、事项与方式后加入"));
  }

  async function loadHistory() {
    const code = jurisdiction()?.county_code;
    if (!code) { mount(historyHost, h("div", { class: "error-box" }, "辖区尚未加载")); return; }
    try {
      const answer = await api(gridPath(`v1/counties/${code}/devolution`));
      if (!disposed) mount(historyHost, historyTable(answer.entries));
    } catch (err) {
      if (!disposed) mount(historyHost, h("div", { class: "error-box" }, `加载失败：${err.message}`));
    }
  }

  const body = () => ({
    items: proposal.map(({ township, matter, mode }) => ({ township, matter, mode })),
    reported_from: fromInput.value, reported_to: toInput.value, threshold_pct: Number(threshold.value || 0),
  });

  add.addEventListener("click", () => {
    const item = { township: townSelect.value, matter: matterSelect.value, mode: modeSelect.value };
    const same = proposal.findIndex((p) => p.township === item.township && p.matter === item.matter);
    if (same >= 0) proposal.splice(same, 1, item); else proposal.push(item);
    drawProposal();
  });

  simulate.addEventListener("click", async () => {
    if (!proposal.length) { toast("提案为空", "error"); return; }
    simulate.disabled = true;
    mount(resultHost, h("div", { class: "empty" }, "正在模拟…"));
    try {
      const answer = await api("/v1/whatif", { method: "POST", body: body() });
      if (!disposed) mount(resultHost, resultView(answer));
    } catch (err) {
      const problems = (err.body?.problems || []).map((p) => `${p.path}: ${p.message}`).join("；");
      if (!disposed) mount(resultHost, h("div", { class: "error-box" }, `模拟失败：${err.message}${problems ? `（${problems}）` : ""}`));
    } finally {
      simulate.disabled = false;
    }
  });

  download.addEventListener("click", async () => {
    if (!proposal.length) { toast("提案为空", "error"); return; }
    download.disabled = true;
    try {
      const response = await api("/v1/whatif.xlsx", { method: "POST", body: body(), raw: true });
      saveBlob(await response.blob(), `whatif-${fromInput.value}-${toInput.value}.xlsx`);
      toast("已开始下载", "ok");
    } catch (err) {
      toast(`导出失败：${err.message}`, "error");
    } finally {
      download.disabled = false;
    }
  });

  record.addEventListener("click", async () => {
    const code = jurisdiction()?.county_code;
    if (!proposal.length || !documentInput.value.trim() || !effective.value || !code) {
      toast("请填写提案、文号与生效日期", "error");
      return;
    }
    record.disabled = true;
    try {
      const items = proposal.map((p) => ({ ...p, effective_from: effective.value }));
      await api(gridPath(`v1/counties/${code}/devolution/changes`), {
        method: "POST", body: { document: documentInput.value.trim(), items },
      });
      toast("已登记调整决定", "ok");
      loadHistory();
    } catch (err) {
      const problems = (err.body?.problems || []).map((p) => `${p.path}: ${p.message}`).join("；");
      toast(`登记失败：${err.message}${problems ? `（${problems}）` : ""}`, "error", 8000);
    } finally {
      record.disabled = false;
    }
  });

  drawProposal();
  loadJurisdiction().then(() => { if (!disposed) { fillChoices(); loadHistory(); } });
  return () => { disposed = true; };
}
