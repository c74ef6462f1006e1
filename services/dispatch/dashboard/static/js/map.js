// The case map (案件位置): an inline SVG drawn from the grid service's division boundaries
// (township → villages → grids) with the case point. No tile server, no external library: the
// boundaries are the base map, so it works on an intranet with no internet access. When the
// boundaries cannot be loaded the card says so and still shows the coordinates.

import { h, svg } from "./dom.js";
import { division, divisionName, featuresUnder, jurisdiction, jurisdictionError } from "./jurisdiction.js";

const W = 640;
const H = 360;
const PAD = 18;

export function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

export function bboxOf(features, point) {
  let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity;
  const add = ([x, y]) => {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x);
    minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  };
  for (const f of features) for (const poly of rings(f.geometry)) for (const ring of poly) ring.forEach(add);
  if (point) add([point.lng, point.lat]);
  return Number.isFinite(minX) ? { minX, minY, maxX, maxY } : null;
}

export function projector(box) {
  const lat0 = ((box.minY + box.maxY) / 2) * (Math.PI / 180);
  const kx = Math.cos(lat0);
  const spanX = Math.max((box.maxX - box.minX) * kx, 1e-6);
  const spanY = Math.max(box.maxY - box.minY, 1e-6);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
  const offX = (W - spanX * scale) / 2;
  const offY = (H - spanY * scale) / 2;
  const project = ([lng, lat]) => [offX + (lng - box.minX) * kx * scale, offY + (box.maxY - lat) * scale];
  const metresPerPx = 111320 / scale;
  return { project, metresPerPx };
}

export function pathOf(geometry, project) {
  return rings(geometry).map((poly) => poly.map((ring) => ring.map((c, i) => {
    const [x, y] = project(c);
    return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
  }).join("") + "Z").join("")).join("");
}

function scaleBar(metresPerPx) {
  const nice = [50, 100, 200, 500, 1000, 2000, 5000, 10000];
  const metres = nice.find((m) => m / metresPerPx >= 60) || nice[nice.length - 1];
  const px = metres / metresPerPx;
  const x = W - PAD - px;
  const y = H - 12;
  return svg("g", { class: "scale" },
    svg("path", { d: `M${x},${y - 4}V${y}H${x + px}V${y - 4}`, fill: "none", stroke: "#445", "stroke-width": 1.5 }),
    svg("text", { x: x + px / 2, y: y - 6, "text-anchor": "middle", "font-size": 11, fill: "#445",
      text: metres >= 1000 ? `${metres / 1000} 公里` : `${metres} 米` }));
}

/** The map card body for a case detail. */
export function caseMap(kase) {
  const loc = kase.incident?.location || null;
  const point = loc && Number.isFinite(loc.lng) && Number.isFinite(loc.lat) ? { lng: loc.lng, lat: loc.lat } : null;
  const coords = point ? `${point.lng.toFixed(5)}, ${point.lat.toFixed(5)}（WGS-84）` : "无坐标";
  const where = [kase.township, kase.village, kase.grid].filter(Boolean).map(divisionName).join(" / ") || "未定位";

  if (!jurisdiction()) {
    const err = jurisdictionError();
    return h("div", { class: "map-box", "data-map": "fallback" },
      h("div", { class: "map-fallback" },
        h("div", {}, "辖区底图暂不可用", err ? `（${err.message}）` : "（正在加载…）"),
        h("div", { class: "small" }, `位置：${where}`),
        h("div", { class: "small mono" }, `坐标：${coords}`)));
  }

  const area = kase.township && division(kase.township) ? kase.township : jurisdiction().county_code;
  const features = featuresUnder(area);
  const box = bboxOf(features, point);
  if (!box) {
    return h("div", { class: "map-box", "data-map": "fallback" },
      h("div", { class: "map-fallback" }, "该区域没有边界数据", h("div", { class: "small mono" }, `坐标：${coords}`)));
  }
  const { project, metresPerPx } = projector(box);
  const level = (f) => f.properties.level;
  const grids = features.filter((f) => level(f) === "grid");
  const villages = features.filter((f) => level(f) === "village");
  const towns = features.filter((f) => level(f) === "township");
  const highlight = kase.grid || kase.village || null;

  const layer = (list, attrs) => list.map((f) => svg("path", {
    d: pathOf(f.geometry, project),
    ...attrs(f),
  }, svg("title", { text: `${f.properties.name}（${f.properties.code}）` })));

  const labels = (area === jurisdiction().county_code ? towns : villages).map((f) => {
    const b = bboxOf([f], null);
    const [x, y] = project([(b.minX + b.maxX) / 2, (b.minY + b.maxY) / 2]);
    return svg("text", { x, y, "text-anchor": "middle", "font-size": 12, fill: "#38506b", opacity: 0.85,
      text: f.properties.name });
  });

  const children = [
    ...layer(grids, (f) => ({
      fill: f.properties.code === highlight ? "#ffe7a3" : "#ffffff",
      "fill-opacity": f.properties.code === highlight ? 0.95 : 0.55,
      stroke: "#9fb3c8", "stroke-width": 0.8, "stroke-dasharray": "3 2",
      "data-code": f.properties.code,
    })),
    ...layer(villages, (f) => ({
      fill: f.properties.code === highlight ? "#ffe7a3" : "none",
      stroke: "#6f8aa6", "stroke-width": 1.2, "data-code": f.properties.code,
    })),
    ...layer(towns, (f) => ({ fill: "none", stroke: "#1d4f91", "stroke-width": 2.2, "data-code": f.properties.code })),
    ...labels,
  ];
  if (point) {
    const [x, y] = project([point.lng, point.lat]);
    children.push(
      svg("circle", { cx: x, cy: y, r: 14, fill: "#c62828", opacity: 0.18 }),
      svg("circle", { cx: x, cy: y, r: 6, fill: "#c62828", stroke: "#fff", "stroke-width": 2, "data-point": "case" },
        svg("title", { text: `案件位置 ${coords}` })),
    );
  }
  children.push(scaleBar(metresPerPx));
  children.push(svg("text", { x: W - PAD, y: PAD, "text-anchor": "end", "font-size": 12, fill: "#445", text: "北 ↑" }));

  const map = svg("svg", {
    viewBox: `0 0 ${W} ${H}`, role: "img", preserveAspectRatio: "xMidYMid meet",
    "aria-label": `案件位置：${where}`,
  }, ...children);

  return h("div", { class: "map-box", "data-map": "svg" },
    map,
    h("div", { class: "map-legend" },
      h("span", {}, h("i", { style: "background:#c62828;border-radius:50%" }), "案件位置"),
      h("span", {}, h("i", { style: "background:#ffe7a3" }), "所在网格/村"),
      h("span", {}, h("i", { style: "background:#fff;border:2px solid #1d4f91" }), "乡镇边界"),
      h("span", { class: "mono" }, coords)),
    point ? null : h("div", { class: "small muted" }, `无坐标：按编码/地址定位至 ${where}`));
}
