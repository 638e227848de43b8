// Workflows: every registered workflow; one workflow's versions, and a version's graph
// (edges no run has taken yet dashed), coverage and compiled plan.

import { api } from "./api.js";
import { h } from "./dom.js";
import { drawDag } from "./dag.js";

export function workflowsPage() {
  const list = h("ul", { class: "cards" }, h("li", {}, "Loading…"));
  api("/workflows").then((all) => {
    list.replaceChildren(...(all.length ? all.map((w) => h("li", {},
      h("a", { href: `#/workflows/${encodeURIComponent(w.name)}` }, w.name),
      ` · versions ${w.versions.join(", ")}`)) : [h("li", {}, "No workflow registered yet.")]));
  }).catch((err) => list.replaceChildren(h("li", { class: "error" }, err.message)));
  return { node: h("section", {}, h("h1", {}, "Workflows"), list) };
}

async function showVersion(name, version, into) {
  const base = `/workflows/${encodeURIComponent(name)}/versions/${version}`;
  const [plan, coverage] = await Promise.all([api(`${base}/plan`), api(`${base}/coverage`)]);
  const never = new Set(coverage.never_taken);
  into.replaceChildren(...[
    h("h2", {}, `Version ${version}`),
    h("p", {}, `Coverage: ${coverage.taken} of ${coverage.edges} edges taken (${(coverage.coverage * 100).toFixed(0)}%) · `,
      h("a", { href: `#/runs?workflow=${encodeURIComponent(name)}` }, "its runs")),
    coverage.never_taken.length
      ? h("p", {}, "Never taken: ", coverage.never_taken.join(", ")) : null,
    drawDag(plan, { neverTaken: never }),
    h("h3", {}, "Plan"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Step", "Runs", "Queue", "After", "Then"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, Object.entries(plan.steps).map(([step, p]) => h("tr", {},
        h("td", {}, step),
        h("td", { class: "mono" }, p.task || `wait for signal ${p.wait_for}`, p.map ? ` × each of ${p.map}` : ""),
        h("td", {}, p.queue), h("td", {}, p.after.join(", ") || "(submit)"),
        h("td", {}, p.then.join(", ") || "(final)"))))),
  ].filter(Boolean));
}

export function workflowPage(name) {
  const versions = h("div");
  const detail = h("div", { "aria-live": "polite" });
  api(`/workflows/${encodeURIComponent(name)}`).then((info) => {
    const rows = info.versions.map((v) => h("tr", {},
      h("td", {}, h("button", { type: "button", "data-version": v.version,
        onclick: () => showVersion(name, v.version, detail) }, `v${v.version}`)),
      h("td", { class: "mono" }, v.hash), h("td", {}, v.steps), h("td", {}, v.description || "")));
    versions.replaceChildren(h("table", {},
      h("thead", {}, h("tr", {}, ["Version", "Hash", "Steps", "Description"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)));
    const newest = info.versions[info.versions.length - 1];
    if (newest) showVersion(name, newest.version, detail);
  }).catch((err) => versions.replaceChildren(h("p", { class: "error" }, err.message)));
  return { node: h("section", {}, h("h1", {}, `Workflow ${name}`), versions, detail) };
}
