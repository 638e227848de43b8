// Small line charts for the scorecard's trend: one per figure, with the numbers as text too.

import { h, s } from "./dom.js";

const W = 260, H = 90, PAD = 6;

export function lineChart(title, points, format) {
  const known = points.filter((p) => p.value !== null && p.value !== undefined);
  const values = known.map((p) => p.value);
  const lo = Math.min(0, ...values), hi = Math.max(...values, lo + 1e-9);
  const x = (i) => PAD + (i / Math.max(1, points.length - 1)) * (W - 2 * PAD);
  const y = (v) => H - PAD - ((v - lo) / (hi - lo || 1)) * (H - 2 * PAD);
  const latest = known.length ? format(known[known.length - 1].value) : "no data";
  const svg = s("svg", { class: "chart", width: W, height: H, role: "img",
    "aria-label": `${title}: latest ${latest}, ${known.length} of ${points.length} buckets with data` });
  svg.append(s("line", { x1: PAD, x2: W - PAD, y1: H - PAD, y2: H - PAD, class: "baseline" }));
  let d = "";
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    d += `${d ? "L" : "M"} ${x(i).toFixed(1)} ${y(p.value).toFixed(1)} `;
    svg.append(s("circle", { cx: x(i), cy: y(p.value), r: 2.5, class: "dot" },
      s("title", {}, `${p.label}: ${format(p.value)}`)));
  });
  if (d) svg.prepend(s("path", { d, class: "line" }));
  return h("figure", { class: "mini" }, h("figcaption", {}, h("strong", {}, title), ` — latest ${latest}`), svg);
}
