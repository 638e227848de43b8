// The run's timeline: one row per step, one bar per stretch of time in a state (queued,
// running, retrying's back-off, waiting for a signal, compensating), from the run's events.
// Each bar is labelled (title) and patterned by kind, not only coloured.

import { h, s } from "./dom.js";

const SHOWN = new Set(["QUEUED", "RUNNING", "RETRYING", "WAITING", "COMPENSATING"]);
const ROW = 18, LEFT = 170, WIDTH = 900;

export function stretches(events, now) {
  const byStep = {};
  for (const ev of events) {
    if (!ev.step || !ev.to) continue;
    (byStep[ev.step] ||= []).push(ev);
  }
  const out = {};
  for (const [step, list] of Object.entries(byStep)) {
    list.sort((a, b) => a.t - b.t);
    out[step] = list.map((ev, i) => ({
      state: ev.to, start: ev.t, end: i + 1 < list.length ? list[i + 1].t : now,
      attempt: ev.attempt,
    })).filter((x) => SHOWN.has(x.state));
  }
  return out;
}

export function drawGantt(order, events, { ended } = {}) {
  const times = events.map((e) => e.t);
  if (!times.length) return h("p", {}, "No events yet.");
  const t0 = Math.min(...times);
  const last = Math.max(...times);
  const now = ended ? last : Math.max(last, Date.now() / 1000);
  const span = Math.max(now - t0, 0.001);
  const bars = stretches(events, now);
  const rows = order.filter((n) => bars[n]?.length);
  const height = 24 + rows.length * ROW;
  const x = (t) => LEFT + ((t - t0) / span) * WIDTH;
  const svg = s("svg", { class: "gantt", width: LEFT + WIDTH + 10, height, role: "img",
    "aria-label": `Timeline of ${rows.length} steps over ${span.toFixed(2)} s` });
  svg.append(s("text", { x: LEFT, y: 12, class: "axis" }, "0 s"),
    s("text", { x: LEFT + WIDTH, y: 12, class: "axis", "text-anchor": "end" }, `${span.toFixed(2)} s`));
  rows.forEach((name, i) => {
    const y = 20 + i * ROW;
    svg.append(s("text", { x: LEFT - 6, y: y + 12, class: "label", "text-anchor": "end" },
      name.length > 24 ? `${name.slice(0, 23)}…` : name));
    for (const b of bars[name]) {
      const w = Math.max(1.5, x(b.end) - x(b.start));
      const took = ((b.end - b.start) * 1000).toFixed(0);
      svg.append(s("rect", { x: x(b.start), y: y + 2, width: w, height: ROW - 5,
        class: `bar b-${b.state}` },
      s("title", {}, `${name}: ${b.state.toLowerCase()}${b.attempt ? ` (attempt ${b.attempt})` : ""}, ${took} ms`)));
    }
  });
  const legend = h("ul", { class: "legend" }, [...SHOWN].map((st) =>
    h("li", {}, h("span", { class: `swatch b-${st}`, "aria-hidden": "true" }), st.toLowerCase())));
  return h("figure", { class: "timeline" }, h("div", { class: "scroll" }, svg),
    h("figcaption", {}, "Timeline (hover a bar for its state, attempt and length)"), legend);
}
