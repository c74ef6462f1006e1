// Two small inline-SVG charts for the performance view (no chart library).

import { h, svg } from "./dom.js";

/**
 * Horizontal bars: one row per item {label, value, marker?}; `value` drawn as a bar, `marker`
 * (e.g. P90) as a tick. Values in `unit`.
 */
export function barChart(items, { unit = "", valueLabel = "", markerLabel = "", width = 520 } = {}) {
  if (!items.length) return h("div", { class: "empty" }, "本期暂无数据");
  const rowH = 22;
  const left = 150;
  const right = 56;
  const top = 24;
  const height = top + items.length * rowH + 8;
  const max = Math.max(...items.map((i) => Math.max(i.value || 0, i.marker || 0)), 1);
  const x = (v) => left + ((width - left - right) * v) / max;
  const nodes = [
    svg("text", { x: left, y: 14, "font-size": 11, fill: "#6b7785",
      text: `${valueLabel}${markerLabel ? `（刻线：${markerLabel}）` : ""}，单位：${unit}` }),
  ];
  items.forEach((item, i) => {
    const y = top + i * rowH;
    nodes.push(
      svg("text", { x: left - 6, y: y + 14, "text-anchor": "end", "font-size": 12, fill: "#1f2933",
        text: item.label.length > 11 ? `${item.label.slice(0, 11)}…` : item.label }, svg("title", { text: item.label })),
      svg("rect", { x: left, y: y + 3, width: Math.max(1, x(item.value || 0) - left), height: rowH - 8, rx: 2,
        fill: "#1d4f91", opacity: 0.85 }),
    );
    if (item.marker) {
      nodes.push(svg("path", { d: `M${x(item.marker)},${y + 1}V${y + rowH - 3}`, stroke: "#d9730d", "stroke-width": 2 }));
    }
    nodes.push(svg("text", { x: x(Math.max(item.value || 0, item.marker || 0)) + 4, y: y + 14, "font-size": 11,
      fill: "#445", text: (item.value ?? 0).toFixed(1) }));
  });
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": valueLabel }, ...nodes);
}

/** Daily trend: bars = count (left axis), line = rate (0..1, right axis). points: [{label, count, rate}]. */
export function trendChart(points, { countLabel = "", rateLabel = "", width = 520, height = 200 } = {}) {
  if (!points.length) return h("div", { class: "empty" }, "暂无数据");
  const left = 34;
  const right = 40;
  const top = 22;
  const bottom = 28;
  const innerW = width - left - right;
  const innerH = height - top - bottom;
  const maxCount = Math.max(1, ...points.map((p) => p.count || 0));
  const step = innerW / points.length;
  const yCount = (v) => top + innerH - (innerH * v) / maxCount;
  const yRate = (r) => top + innerH - innerH * r;
  const nodes = [
    svg("text", { x: left, y: 12, "font-size": 11, fill: "#6b7785", text: `柱：${countLabel}　线：${rateLabel}` }),
    svg("path", { d: `M${left},${top}V${top + innerH}H${left + innerW}`, fill: "none", stroke: "#c5ccd6" }),
    svg("text", { x: left - 4, y: top + 4, "text-anchor": "end", "font-size": 10, fill: "#6b7785", text: maxCount }),
    svg("text", { x: left + innerW + 4, y: top + 4, "font-size": 10, fill: "#c62828", text: "100%" }),
    svg("text", { x: left + innerW + 4, y: top + innerH, "font-size": 10, fill: "#c62828", text: "0%" }),
  ];
  const line = [];
  points.forEach((p, i) => {
    const cx = left + step * i + step / 2;
    const barW = Math.max(2, step * 0.55);
    nodes.push(svg("rect", { x: cx - barW / 2, y: yCount(p.count || 0), width: barW,
      height: top + innerH - yCount(p.count || 0), fill: "#f0a35e" }, svg("title", { text: `${p.label}：${p.count}` })));
    if (i % Math.ceil(points.length / 7) === 0 || i === points.length - 1) {
      nodes.push(svg("text", { x: cx, y: height - 10, "text-anchor": "middle", "font-size": 10, fill: "#6b7785",
        text: p.label }));
    }
    if (p.rate !== null && p.rate !== undefined) line.push(`${line.length ? "L" : "M"}${cx.toFixed(1)},${yRate(p.rate).toFixed(1)}`);
  });
  if (line.length) nodes.push(svg("path", { d: line.join(""), fill: "none", stroke: "#c62828", "stroke-width": 2 }));
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${countLabel}/${rateLabel}` }, ...nodes);
}
