// 力量调度 view (#/forces): on-duty forces on the map (fresh positions only, ≤ 30 min), the list beside it,
// and the joint operations (联合执法) with their 报到 and lateness. GET /v1/forces/positions?fresh=true&on_duty=true,
// GET /v1/forces/operations, POST /v1/forces/operations/{id}/confirm. The base map is the county's division
// boundaries (no tile server), as in the case view.

import { api } from "./api.js";
import { fmtDateTime, h, mount, svg, toast } from "./dom.js";
import { featuresUnder, jurisdiction, unitName } from "./jurisdiction.js";
import { bboxOf, pathOf, projector } from "./map.js";
import { on, store } from "./store.js";

const W = 640;
const H = 360;
const ROLE_ZH = { leader: "负责人", member: "队员", grid_worker: "网格员" };
const OP_STATE_ZH = { open: "进行中", concluded: "已结束", cancelled: "已撤销" };

function forcesMap(items) {
  const bundle = jurisdiction();
  if (!bundle) return h("div", { class: "map-fallback", "data-map": "fallback" }, "辖区底图暂不可用");
  const features = featuresUnder(bundle.county_code).filter((f) => f.properties.level !== "grid");
  const box = bboxOf(features, null);
  if (!box) return h("div", { class: "map-fallback" }, "没有边界数据");
  const { project } = projector(box);
  const shapes = features.map((f) => svg("path", {
    d: pathOf(f.geometry, project), fill: "none",
    stroke: f.properties.level === "township" ? "#1d4f91" : "#9fb3c8",
    "stroke-width": f.properties.level === "township" ? 2 : 0.8,
  }));
  const dots = items.map((p) => {
    const [x, y] = project([p.lng, p.lat]);
    return svg("circle", { cx: x, cy: y, r: 5, fill: p.available ? "#2e7d32" : "#ef6c00", stroke: "#fff",
      "stroke-width": 1.5, "data-force": p.member_id },
    svg("title", { text: `${p.name}（${unitName(p.unit)}）${p.available ? "可派" : "忙碌"} ${fmtDateTime(p.at)}` }));
  });
  return h("div", { class: "map-box", "data-map": "forces" },
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "在岗力量分布" }, ...shapes, ...dots),
    h("div", { class: "map-legend" },
      h("span", {}, h("i", { style: "background:#2e7d32;border-radius:50%" }), "在岗可派"),
      h("span", {}, h("i", { style: "background:#ef6c00;border-radius:50%" }), "在岗忙碌"),
      h("span", { class: "small muted" }, "仅显示 30 分钟内的位置")));
}

function forcesTable(items) {
  if (!items.length) return h("div", { class: "empty", "data-forces": "empty" }, "暂无在岗且位置新鲜的人员");
  return h("table", { class: "grid", "data-forces": "list" },
    h("thead", {}, h("tr", {}, ["姓名", "角色", "单位", "状态", "定位时间"].map((t) => h("th", {}, t)))),
    h("tbody", {}, items.map((p) => h("tr", { "data-member": p.member_id },
      h("td", {}, p.name), h("td", {}, ROLE_ZH[p.role] || p.role), h("td", {}, unitName(p.unit)),
      h("td", {}, p.available ? "可派" : "忙碌"), h("td", {}, fmtDateTime(p.at))))));
}

function confirmButton(op, onDone) {
  const me = store.me;
  if (op.state !== "open" || me.role !== "unit" || !op.units.includes(me.unit) || op.confirmations[me.unit]) return null;
  const button = h("button", { type: "button", class: "btn btn-small", "data-confirm": op.id }, "报到");
  button.addEventListener("click", async () => {
    const people = window.prompt("出动人员（队员编号，逗号分隔）", "");
    if (!people) return;
    try {
      await api(`/v1/forces/operations/${op.id}/confirm`, { method: "POST",
        body: { expected_version: op.version, people: people.split(/[,，\s]+/).filter(Boolean) } });
      toast("已报到", "success");
      onDone();
    } catch (err) { toast(err.message, "error"); }
  });
  return button;
}

function operationsTable(ops, onDone) {
  if (!ops.length) return h("div", { class: "empty", "data-operations": "empty" }, "暂无联合执法");
  return h("table", { class: "grid", "data-operations": "list" },
    h("thead", {}, h("tr", {}, ["地点", "牵头单位", "时间", "状态", "报到", "逾时未报到 / 迟到", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, ops.map((op) => h("tr", { "data-operation": op.id, "data-op-state": op.state },
      h("td", {}, op.place), h("td", {}, unitName(op.lead_unit)),
      h("td", {}, `${fmtDateTime(op.starts_at)} – ${fmtDateTime(op.ends_at)}`),
      h("td", {}, OP_STATE_ZH[op.state] || op.state),
      h("td", { "data-confirmed": Object.keys(op.confirmations).length },
        `${Object.keys(op.confirmations).length}/${op.units.length}`),
      h("td", { "data-late": [...op.late_units, ...op.confirmed_late, ...op.absent].join(",") },
        [...op.late_units.map((u) => `${unitName(u)}（未报到）`), ...op.confirmed_late.map((u) => `${unitName(u)}（迟到）`),
          ...op.absent.map((u) => `${unitName(u)}（缺席）`)].join("；") || "—"),
      h("td", {}, confirmButton(op, onDone))))));
}

/** Render the forces view into `root`; returns a disposer. */
export function renderForces(root) {
  let disposed = false;
  const mapBox = h("div", { class: "card-body" }, "正在加载…");
  const listBox = h("div", { class: "card-body table-scroll" });
  const opsBox = h("div", { class: "card-body" }, "正在加载…");
  mount(root, h("div", { class: "forces-grid" },
    h("section", { class: "card", "data-card": "forces-map" }, h("div", { class: "card-head" }, h("h2", {}, "在岗力量")), mapBox),
    h("section", { class: "card", "data-card": "forces-list" }, h("div", { class: "card-head" }, h("h2", {}, "人员")), listBox),
    h("section", { class: "card", "data-card": "operations" }, h("div", { class: "card-head" }, h("h2", {}, "联合执法")), opsBox)));

  async function load() {
    const [positions, ops] = await Promise.all([
      api("/v1/forces/positions", { query: { fresh: true, on_duty: true } }).catch((err) => ({ error: err })),
      api("/v1/forces/operations").catch((err) => ({ error: err })),
    ]);
    if (disposed) return;
    if (positions.error) mount(mapBox, h("div", { class: "error-box" }, positions.error.message));
    else {
      mount(mapBox, forcesMap(positions.items));
      mount(listBox, forcesTable(positions.items));
    }
    if (ops.error) mount(opsBox, h("div", { class: "error-box" }, ops.error.message));
    else mount(opsBox, operationsTable(ops.items, load));
  }
  const disposers = [on("tick", load), on("jurisdiction-loaded", load)];
  load();
  return () => { disposed = true; disposers.forEach((f) => f()); };
}
