// The performance view (绩效考核): the chosen period's ranking under a chosen scheme with grades,
// KPIs, a handling-time chart and the overdue trend, and the xlsx download. Everything comes from
// the metrics service through /dashboard/api/metrics/… (scope applied by the metrics service).

import { api, metricsPath, filenameOf } from "./api.js";
import { barChart, trendChart } from "./chart.js";
import { beijingToday, h, mount, num, pct, saveBlob, toast } from "./dom.js";
import { divisionName, unitName } from "./jurisdiction.js";
import { UNIT_KIND_LABELS, label } from "./labels.js";

const TREND_DAYS = 14;
const pad = (n) => String(n).padStart(2, "0");

function isoWeek(y, m, d) {
  const date = new Date(Date.UTC(y, m - 1, d));
  const day = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - day);
  const yearStart = new Date(Date.UTC(date.getUTCFullYear(), 0, 1));
  const week = Math.ceil(((date - yearStart) / 86400000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${pad(week)}`;
}

/** Period choices (ids the metrics service parses), current month first. */
export function periodChoices(today = beijingToday()) {
  const { year, month, day } = today;
  const prev = month === 1 ? { y: year - 1, m: 12 } : { y: year, m: month - 1 };
  const quarter = Math.floor((month - 1) / 3) + 1;
  return [
    { id: `${year}-${pad(month)}`, label: `本月（${year}年${month}月）` },
    { id: `${prev.y}-${pad(prev.m)}`, label: `上月（${prev.y}年${prev.m}月）` },
    { id: isoWeek(year, month, day), label: `本周（${isoWeek(year, month, day)}）` },
    { id: `${year}-Q${quarter}`, label: `本季度（${year}年第${quarter}季度）` },
    { id: String(year), label: `本年（${year}年）` },
  ];
}

function lastDays(n, today = beijingToday()) {
  const out = [];
  const base = Date.UTC(today.year, today.month - 1, today.day);
  for (let i = n - 1; i >= 0; i -= 1) {
    const d = new Date(base - i * 86400000);
    out.push(`${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`);
  }
  return out;
}

function rankingTable(scores, scheme) {
  const rows = scores.rows || [];
  if (!rows.length) return h("div", { class: "empty", "data-empty": "ranking" }, "本期暂无可评分的单位（尚无派遣案件）");
  const parts = Object.entries(scheme?.headers || {});
  return h("div", { class: "table-scroll", style: "max-height:none" }, h("table", { class: "grid", "data-table": "ranking" },
    h("thead", {}, h("tr", {},
      h("th", { class: "num" }, "同类排名"), h("th", {}, "单位"), h("th", {}, "类型"), h("th", {}, "乡镇"),
      h("th", { class: "num" }, "案件数"), h("th", { class: "num" }, "得分"), h("th", {}, "等级"),
      h("th", { class: "num" }, "乡镇内排名"),
      parts.map(([, text]) => h("th", { class: "num" }, text)),
      h("th", {}, "状态"))),
    h("tbody", {}, rows.map((r) => h("tr", { "data-unit": r.unit, style: "cursor:default" },
      h("td", { class: "num" }, r.rank_in_kind ?? "—"),
      h("td", {}, r.unit_name || unitName(r.unit)),
      h("td", {}, label(UNIT_KIND_LABELS, r.unit_kind)),
      h("td", {}, r.township === "*" ? "全县" : divisionName(r.township)),
      h("td", { class: "num" }, r.cases),
      h("td", { class: "num" }, r.score !== null && r.score !== undefined ? num(r.score, 1)
        : r.partial_score !== null && r.partial_score !== undefined ? `(${num(r.partial_score, 1)})` : "—"),
      h("td", {}, r.grade ? h("span", { class: `badge grade-${r.grade}` }, r.grade) : "—"),
      h("td", { class: "num" }, r.rank_in_township ?? "—"),
      parts.map(([key]) => h("td", { class: "num" }, num(r.parts?.[key], 1))),
      h("td", { class: "small" }, r.status_label || r.status))))));
}

function kpis(total) {
  const c = total?.counts || {};
  const r = total?.rates || {};
  const item = (k, v, key) => h("div", { class: "kpi", "data-kpi": key }, h("div", { class: "v" }, v), h("div", { class: "k" }, k));
  return h("div", { class: "kpis" },
    item("派遣案件", c.dispatched ?? 0, "dispatched"),
    item("签收率", pct(r.acceptance_rate), "acceptance_rate"),
    item("按期办结率", pct(r.ontime_resolution_rate), "ontime_resolution_rate"),
    item("超期率", pct(r.overdue_rate), "overdue_rate"),
    item("满意率", pct(r.satisfaction_rate), "satisfaction_rate"));
}

function handlingChart(indicators) {
  const items = (indicators?.rows || [])
    .map((row) => ({
      label: row.unit_name || unitName(row.unit),
      value: row.durations?.handling_working_h?.median,
      marker: row.durations?.handling_working_h?.p90,
    }))
    .filter((i) => i.value !== null && i.value !== undefined)
    .sort((a, b) => b.value - a.value)
    .slice(0, 12);
  const t = indicators?.total?.durations?.handling_working_h || {};
  return [
    h("div", { class: "small muted", style: "margin-bottom:6px" },
      `全部办结案件：平均 ${num(t.avg)} · 中位数 ${num(t.median)} · P90 ${num(t.p90)} 工作小时`),
    barChart(items, { unit: "工作小时", valueLabel: "各单位办结时长中位数", markerLabel: "P90" }),
  ];
}

/** Render the performance view into `root`; returns a disposer. */
export function renderPerf(root) {
  const periods = periodChoices();
  const schemeSelect = h("select", { id: "perf-scheme" }, h("option", { value: "" }, "正在加载方案…"));
  const periodSelect = h("select", { id: "perf-period" }, periods.map((p) => h("option", { value: p.id }, p.label)));
  const download = h("button", { type: "button", class: "btn", "data-download": "xlsx", disabled: true }, "导出 Excel（xlsx）");
  const downloadCsv = h("button", { type: "button", class: "btn btn-secondary", "data-download": "csv", disabled: true }, "导出 CSV");
  const kpiHost = h("div", {});
  const rankingHost = h("div", { class: "card-body" }, h("div", { class: "empty" }, "正在加载…"));
  const rankingTitle = h("h2", {}, "考核排名");
  const handlingHost = h("div", { class: "card-body chart", "data-chart": "handling" });
  const trendHost = h("div", { class: "card-body chart", "data-chart": "overdue-trend" });
  let schemes = [];
  let disposed = false;
  let generation = 0;

  mount(root,
    h("section", { class: "card" }, h("div", { class: "card-body perf-controls" },
      h("div", {}, h("label", { for: "perf-scheme" }, "考核方案"), schemeSelect),
      h("div", {}, h("label", { for: "perf-period" }, "考核周期"), periodSelect),
      h("div", { style: "min-width:0" }, download),
      h("div", { style: "min-width:0" }, downloadCsv),
      h("div", { class: "small muted", style: "min-width:0;flex:1;text-align:right" }, "数据范围随登录账号；未签发周期为实时数据"))),
    kpiHost,
    h("div", { class: "perf-grid" },
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, "办结时长分布（工作时）")), handlingHost),
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, `超期趋势（近 ${TREND_DAYS} 天）`)),
        trendHost)),
    h("section", { class: "card", "data-card": "ranking" }, h("div", { class: "card-head" }, rankingTitle), rankingHost));

  async function loadTrend() {
    const days = lastDays(TREND_DAYS);
    const asOf = new Date().toISOString();
    const points = await Promise.all(days.map(async (day) => {
      try {
        const res = await api(metricsPath("v1/indicators"), { query: { period: day, group_by: "", as_of: asOf } });
        return { label: day.slice(5), count: res.total?.counts?.overdue ?? 0, rate: res.total?.rates?.overdue_rate ?? null };
      } catch {
        return { label: day.slice(5), count: 0, rate: null };
      }
    }));
    if (!disposed) mount(trendHost, trendChart(points, { countLabel: "按派遣日：超期件数（截至当前）", rateLabel: "超期率" }));
  }

  async function load() {
    const mine = ++generation;
    const schemeId = schemeSelect.value;
    const period = periodSelect.value;
    if (!schemeId) return;
    const scheme = schemes.find((s) => s.id === schemeId);
    mount(rankingHost, h("div", { class: "empty" }, "正在加载…"));
    mount(handlingHost, h("div", { class: "empty" }, "正在加载…"));
    const [scores, indicators] = await Promise.allSettled([
      api(metricsPath(`v1/scores/${encodeURIComponent(schemeId)}/${encodeURIComponent(period)}`)),
      api(metricsPath("v1/indicators"), { query: { period, group_by: "unit" } }),
    ]);
    if (disposed || mine !== generation) return;
    if (scores.status === "fulfilled") {
      const s = scores.value;
      mount(rankingTitle, `考核排名 · ${s.scheme?.name || scheme?.name || schemeId} · ${s.period?.id || period}`,
        s.signed_off ? h("span", { class: "badge state-closed", style: "margin-left:8px" }, "已签发") : null);
      mount(rankingHost, rankingTable(s, scheme));
    } else {
      mount(rankingHost, h("div", { class: "error-box" }, `排名加载失败：${scores.reason.message}`));
    }
    if (indicators.status === "fulfilled") {
      mount(kpiHost, kpis(indicators.value.total));
      mount(handlingHost, ...handlingChart(indicators.value));
    } else {
      mount(kpiHost, h("div", { class: "error-box" }, `指标加载失败：${indicators.reason.message}`));
      mount(handlingHost, h("div", { class: "empty" }, "—"));
    }
  }

  async function exportFile(kind, button) {
    const schemeId = schemeSelect.value;
    const period = periodSelect.value;
    button.disabled = true;
    try {
      const response = await api(metricsPath(`v1/export/${encodeURIComponent(schemeId)}/${encodeURIComponent(period)}.${kind}`),
        { raw: true });
      const blob = await response.blob();
      saveBlob(blob, filenameOf(response, `${schemeId}-${period}.${kind}`));
      toast("已开始下载", "ok");
    } catch (err) {
      toast(`导出失败：${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  download.addEventListener("click", () => exportFile("xlsx", download));
  downloadCsv.addEventListener("click", () => exportFile("csv", downloadCsv));
  schemeSelect.addEventListener("change", load);
  periodSelect.addEventListener("change", load);

  (async () => {
    try {
      const res = await api(metricsPath("v1/schemes"));
      schemes = res.schemes || [];
    } catch (err) {
      mount(rankingHost, h("div", { class: "error-box" }, `考核方案加载失败：${err.message}`));
      return;
    }
    if (disposed) return;
    mount(schemeSelect, schemes.length ? schemes.map((s) => h("option", { value: s.id }, s.name))
      : h("option", { value: "" }, "（无生效方案）"));
    download.disabled = !schemes.length;
    downloadCsv.disabled = !schemes.length;
    load();
  })();
  loadTrend();
  return () => { disposed = true; };
}
