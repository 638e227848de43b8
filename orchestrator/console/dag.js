// The workflow's graph as SVG: steps in layers by their longest path from a root, each
// coloured by its state and labelled with it (text and glyph), map steps with their element
// progress; edges a run took are solid, edges it will never take (a skipped step, a branch
// not chosen) dashed and labelled in the legend.

import { h, s, STATES } from "./dom.js";

const W = 168, H = 48, GX = 56, GY = 14;
const DONE = new Set(["SUCCEEDED", "COMPENSATING", "COMPENSATED", "COMPENSATION_FAILED"]);
const STARTED = new Set(["QUEUED", "RUNNING", "RETRYING", "WAITING", "SUCCEEDED", "FAILED",
  "COMPENSATING", "COMPENSATED", "COMPENSATION_FAILED"]);

export function layout(steps) {
  const names = Object.keys(steps);
  const layer = {};
  const visit = (n) => {
    if (layer[n] !== undefined) return layer[n];
    layer[n] = 0; // guards a malformed cycle; plans are acyclic
    const ups = steps[n].after || [];
    layer[n] = ups.length ? Math.max(...ups.map(visit)) + 1 : 0;
    return layer[n];
  };
  names.forEach(visit);
  const columns = [];
  for (const n of names) (columns[layer[n]] ||= []).push(n);
  const row = {};
  columns.forEach((col, x) => {
    if (x > 0) {
      const centre = (n) => {
        const ups = steps[n].after || [];
        return ups.reduce((a, u) => a + row[u], 0) / Math.max(1, ups.length);
      };
      col.sort((a, b) => centre(a) - centre(b));
    }
    col.forEach((n, y) => { row[n] = y; });
  });
  const pos = {};
  for (const n of names) pos[n] = { x: 12 + layer[n] * (W + GX), y: 12 + row[n] * (H + GY) };
  const width = 24 + columns.length * (W + GX) - GX;
  const height = 24 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  return { pos, width, height };
}

export function edgeKind(up, down, status, neverTaken) {
  if (neverTaken) return neverTaken.has(`${up} → ${down}`) ? "never" : "taken";
  if (!status) return "plain";
  const u = status[up]?.state, d = status[down]?.state;
  if (d === "SKIPPED" || u === "SKIPPED" || u === "FAILED") return "never";
  if (DONE.has(u) && STARTED.has(d)) return "taken";
  return "plain";
}

function nodeLabel(name, st) {
  const state = st?.state;
  const lines = [s("text", { x: 10, y: 19, class: "n-name" }, name.length > 22 ? `${name.slice(0, 21)}…` : name)];
  if (state) {
    let extra = "";
    if (st.elements !== undefined) {
      const done = st.elements - (st.elements_left ?? 0);
      extra = ` · ${done}/${st.elements} elements`;
    }
    lines.push(s("text", { x: 10, y: 37, class: "n-state" }, `${STATES[state] || ""} ${state}${extra}`));
  }
  return lines;
}

export function drawDag(plan, { status, neverTaken, onSelect } = {}) {
  const steps = plan.steps;
  const { pos, width, height } = layout(steps);
  const svg = s("svg", {
    class: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Graph of ${plan.workflow} v${plan.version}: ${Object.keys(steps).length} steps`,
  });
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))));
  const edges = s("g", { class: "edges" });
  for (const [down, step] of Object.entries(steps)) {
    for (const up of step.after || []) {
      const a = pos[up], b = pos[down];
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      const kind = edgeKind(up, down, status, neverTaken);
      const isMap = step.map === up;
      edges.append(s("path", {
        d: `M ${x1} ${y1} C ${mx} ${y1} ${mx} ${y2} ${x2} ${y2}`,
        class: `edge e-${kind}${isMap ? " e-map" : ""}`, "marker-end": "url(#arrow)",
        "data-edge": `${up}>${down}`, "data-kind": kind,
      }, s("title", {}, `${up} → ${down}${isMap ? " (map)" : ""}: ${kind === "never" ? "never taken" : kind}`)));
    }
  }
  svg.append(edges);
  const nodes = s("g", { class: "nodes" });
  for (const [name, step] of Object.entries(steps)) {
    const st = status?.[name];
    const state = st?.state || "PLAN";
    const what = step.wait_for ? `waits for signal ${step.wait_for}` : step.task || "";
    const g = s("g", {
      class: `node st-${state}`, transform: `translate(${pos[name].x},${pos[name].y})`,
      "data-step": name, "data-state": state, tabindex: onSelect ? 0 : undefined,
      role: onSelect ? "button" : undefined,
      "aria-label": `${name}: ${st ? state : what}`,
    }, s("title", {}, `${name}\n${what}${st ? `\n${state}` : ""}`),
    s("rect", { width: W, height: H, rx: 6 }), nodeLabel(name, st));
    if (step.map && st?.elements) {
      const done = st.elements - (st.elements_left ?? 0);
      g.append(s("rect", { class: "progress", x: 0, y: H - 4, height: 4,
        width: (W * done) / st.elements }));
    }
    if (onSelect) {
      g.addEventListener("click", () => onSelect(name));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onSelect(name); } });
    }
    nodes.append(g);
  }
  svg.append(nodes);
  return h("figure", { class: "graph" }, h("div", { class: "scroll" }, svg),
    h("figcaption", {}, "Edges: solid = taken, dashed = never taken (skipped or not chosen), "
      + "thin = not yet; double line = map. Each step shows its state in words."));
}
