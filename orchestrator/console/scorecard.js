// Scorecard: per workflow version, the trend of each figure over the window (`orch metrics`).

import { api } from "./api.js";
import { h } from "./dom.js";
import { lineChart } from "./chart.js";
import { poll } from "./poll.js";

const pct = (v) => `${(v * 100).toFixed(1)}%`;
const secs = (v) => (v < 1 ? `${(v * 1000).toFixed(1)} ms` : `${v.toFixed(2)} s`);
const FIGURES = [
  ["Runs", "runs", (v) => String(v)],
  ["Success rate", "success_rate", pct],
  ["Retry burden", "retry_burden", (v) => v.toFixed(3)],
  ["Queue delay p95", "queue_delay_p95", secs],
  ["Handoff accuracy", "handoff_accuracy", pct],
  ["Compensation rate", "compensation_rate", pct],
  ["Coverage", "coverage", pct],
];

export function scorecardPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const windowSel = h("select", { id: "f-window" }, ["1h", "24h", "7d", "30d"].map((w) =>
    h("option", { value: w, selected: (params.get("window") || "1h") === w }, w)));
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/scorecard?window=${windowSel.value}`;
  } }, h("label", { for: "f-window" }, "Window"), windowSel, h("button", { type: "submit" }, "Show"));
  const tick = async () => {
    const card = await api(`/metrics?window=${encodeURIComponent(windowSel.value)}`);
    const shown = card.versions.filter((v) => v.current.runs || v.current.first_attempts);
    out.replaceChildren(h("p", { class: "muted" }, `Last ${card.window}, by ${card.by}`),
      ...(shown.length ? shown.map((v) => h("article", { class: "score", "data-ref": `${v.workflow}:${v.version}` },
        h("h2", {}, h("a", { href: `#/workflows/${encodeURIComponent(v.workflow)}` }, v.workflow), ` v${v.version}`),
        h("p", {}, `${v.current.runs} runs · success ${v.current.success_rate === null ? "—" : pct(v.current.success_rate)}`
          + ` · ${v.current.retries} retries · ${v.current.compensated} compensated`),
        h("div", { class: "charts" }, FIGURES.map(([title, key, fmt]) => lineChart(title,
          v.trend.map((p) => ({ label: new Date(p.start).toLocaleTimeString(), value: p[key] })), fmt)))))
        : [h("p", {}, `No run in the last ${card.window}.`)]));
    return false;
  };
  return { node: h("section", {}, h("h1", {}, "Scorecard"), form, out), cleanup: poll(tick, 10000) };
}
