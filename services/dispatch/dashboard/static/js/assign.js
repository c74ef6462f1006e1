// Manual dispatch from triage (人工分拨 → 手动派遣): choose matter, township, then unit; the
// routing engine's suggestion comes first and is preselected. Posts POST /v1/cases/{id}/assign.
//
// The suggestions are the server's: GET /v1/cases/{id}/candidates?matter=&township= answers
// routing.candidates() on dispatch's current jurisdiction (override rules included), in order, with
// the units that rejected the case flagged, `suggested` (the first usable candidate) and
// `rejected_units` (units that may not get the case back). This file only lays them out.

import { api } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { allMatters, divisionName, townships, unitName, unitsForTownship } from "./jurisdiction.js";
import { DECIDED_BY_LABELS, TRIAGE_LABELS, label } from "./labels.js";
import { store } from "./store.js";

/**
 * The server's candidates for `matterCode` in `township`:
 * {items (usable candidates, suggestion first), rejected (Set of unit ids), error (message or null)}.
 */
export async function suggestions(detail, matterCode, township) {
  try {
    const res = await api(`/v1/cases/${detail.id}/candidates`, { query: { matter: matterCode, township } });
    const usable = (res.candidates || []).filter((c) => c.unit && c.exists && !c.rejected);
    const items = [
      ...usable.filter((c) => c.unit === res.suggested),
      ...usable.filter((c) => c.unit !== res.suggested),
    ];
    return { items, rejected: new Set(res.rejected_units || []), error: null };
  } catch (err) {
    return { items: [], rejected: new Set(), error: err.message };
  }
}

/** The manual dispatch card for a triage case. `onDone(answer)` after a successful assignment. */
export function assignPanel(detail, { onDone } = {}) {
  const me = store.me;
  const matterSelect = h("select", { id: "assign-matter", name: "matter" });
  const townSelect = h("select", { id: "assign-township", name: "township" });
  const unitSelect = h("select", { id: "assign-unit", name: "unit", required: true });
  const suggestBox = h("div", { class: "suggest", "data-suggestion": "" }, "正在计算建议…");
  const reason = h("textarea", { id: "assign-reason", name: "reason", required: true, maxlength: 2000 },
    `人工分拨（${label(TRIAGE_LABELS, detail.triage_reason, "待人工分拨")}）：经研判派至该单位办理`);
  const error = h("div", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn", "data-submit": "assign" }, "确认派遣");

  // 事项: grouped, current one preselected (required when the case is uncategorised).
  const groups = new Map();
  for (const m of allMatters()) {
    if (!groups.has(m.group)) groups.set(m.group, []);
    groups.get(m.group).push(m);
  }
  mount(matterSelect,
    h("option", { value: "" }, detail.matter ? "（保持原事项）" : "请选择事项…"),
    [...groups].map(([group, list]) => h("optgroup", { label: group },
      list.map((m) => h("option", { value: m.code, selected: m.code === detail.matter }, `${m.name}（${m.code}）`)))));
  if (!detail.matter) matterSelect.required = true;

  // 乡镇: the case's, or the signed-in township only.
  const towns = townships().filter((t) => me.township === "*" || t.code === me.township);
  mount(townSelect,
    h("option", { value: "" }, "请选择乡镇…"),
    towns.map((t) => h("option", { value: t.code, selected: t.code === (detail.township || me.township) }, t.name)));
  if (me.township !== "*") townSelect.disabled = true;

  let generation = 0;
  async function refreshUnits() {
    const mine = ++generation;
    const matterCode = matterSelect.value || detail.matter || null;
    const township = townSelect.value || null;
    mount(unitSelect, h("option", { value: "" }, "正在加载…"));
    const { items, rejected, error: failed } = await suggestions(detail, matterCode, township);
    if (mine !== generation) return;
    const { own, agencies, departments } = unitsForTownship(township);
    const suggested = new Set(items.map((c) => c.unit));
    const opt = (u) => h("option", { value: u.id, disabled: rejected.has(u.id) || null },
      `${u.name}${rejected.has(u.id) ? "（已退单）" : ""}`);
    mount(unitSelect,
      h("option", { value: "" }, "请选择承办单位…"),
      items.length ? h("optgroup", { label: "系统建议" }, items.map((c, i) => h("option", {
        value: c.unit, selected: i === 0, "data-suggested": String(i + 1),
      }, `${i === 0 ? "★ " : ""}${unitName(c.unit)}`))) : null,
      [["本乡镇单位", own], ["派驻机构", agencies], ["县级部门", departments]]
        .map(([name, list]) => [name, list.filter((u) => !suggested.has(u.id))])
        .filter(([, list]) => list.length)
        .map(([name, list]) => h("optgroup", { label: name }, list.map(opt))));
    if (items.length) {
      const first = items[0];
      mount(suggestBox,
        h("strong", {}, "系统建议："), unitName(first.unit),
        first.decided_by ? ` · ${label(DECIDED_BY_LABELS, first.decided_by)}` : "",
        h("div", { class: "small" }, first.why_zh || ""),
        items.length > 1 ? h("div", { class: "small muted" },
          `候补：${items.slice(1).map((c) => unitName(c.unit)).join("、")}`) : null,
        h("div", { class: "small muted" }, "依据派遣规则与属地默认（派遣服务计算）"));
    } else if (failed) {
      mount(suggestBox, `暂无法获取建议单位（${failed}），请手动选择。`);
    } else {
      mount(suggestBox, township
        ? (matterCode ? "无可用的建议单位（候选单位均已退单或不存在），请手动选择。" : "请先选择事项，系统将给出建议单位。")
        : "案件无法定位：请先选择乡镇。");
    }
  }

  const form = h("form", { class: "assign", "data-form": "assign" },
    h("label", { for: "assign-matter" }, "事项", detail.matter ? "" : " *"), matterSelect,
    h("label", { for: "assign-township" }, "乡镇/街道"), townSelect,
    h("label", { for: "assign-unit" }, "承办单位 *"), unitSelect,
    suggestBox,
    h("label", { for: "assign-reason" }, "派遣理由 *"), reason,
    error,
    h("div", { class: "dialog-buttons" }, submit));

  matterSelect.addEventListener("change", refreshUnits);
  townSelect.addEventListener("change", refreshUnits);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    error.textContent = "";
    const body = { unit: unitSelect.value, reason: reason.value.trim(), expected_version: detail.version };
    if (matterSelect.value && matterSelect.value !== detail.matter) body.matter = matterSelect.value;
    try {
      const answer = await api(`/v1/cases/${detail.id}/assign`, { method: "POST", body });
      toast(`已派遣至${unitName(body.unit)}`, "ok");
      onDone?.(answer);
    } catch (err) {
      error.textContent = err.message;
      submit.disabled = false;
    }
  });
  refreshUnits();

  const where = detail.township ? divisionName(detail.township) : "未定位";
  return h("section", { class: "card", "data-card": "assign" },
    h("div", { class: "card-head" }, h("h2", {}, "人工分拨 · 手动派遣"), h("span", { class: "spacer" }),
      detail.triage_reason ? h("span", { class: "badge reason" }, label(TRIAGE_LABELS, detail.triage_reason)) : null),
    h("div", { class: "card-body" },
      h("div", { class: "small muted" }, `定位：${where}；原派遣单位：${detail.unit ? unitName(detail.unit) : "无"}`),
      form));
}
