// Runs: the newest runs with filters (workflow, state, how many), refreshed every 2 s.
// Ids are shown whole, with a copy button each.

import { api } from "./api.js";
import { badge, copyButton, duration, h, seconds, STATES } from "./dom.js";
import { poll } from "./poll.js";

export function runsPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const workflow = h("input", { id: "f-workflow", name: "workflow", value: params.get("workflow") || "", placeholder: "any" });
  const state = h("select", { id: "f-state", name: "state" }, h("option", { value: "" }, "any"),
    Object.keys(STATES).filter((st) => !["QUEUED", "RETRYING", "WAITING", "SKIPPED"].includes(st))
      .map((st) => h("option", { value: st, selected: params.get("state") === st }, st)));
  const limit = h("input", { id: "f-limit", name: "limit", type: "number", min: 1, max: 1000, value: params.get("limit") || 50 });
  const body = h("tbody");
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const form = h("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (workflow.value) q.set("workflow", workflow.value);
    if (state.value) q.set("state", state.value);
    q.set("limit", limit.value);
    location.hash = `#/runs?${q}`;
  } },
  h("label", { for: "f-workflow" }, "Workflow"), workflow,
  h("label", { for: "f-state" }, "State"), state,
  h("label", { for: "f-limit" }, "Show"), limit,
  h("button", { type: "submit" }, "Filter"));

  const tick = async () => {
    const q = new URLSearchParams({ limit: limit.value || 50 });
    if (params.get("workflow")) q.set("workflow", params.get("workflow"));
    if (params.get("state")) q.set("state", params.get("state"));
    const runs = await api(`/runs?${q}`);
    body.replaceChildren(...runs.map((r) => h("tr", { "data-run": r.id },
      h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.id)}`, class: "mono" }, r.id), " ", copyButton(r.id)),
      h("td", {}, h("a", { href: `#/workflows/${encodeURIComponent(r.workflow)}` }, r.workflow), ` v${r.version}`),
      h("td", {}, badge(r.state)),
      h("td", {}, r.created_at ? new Date(r.created_at).toLocaleString() : ""),
      h("td", {}, duration(seconds(r.created_at, r.finished_at))))));
    status.textContent = `${runs.length} runs · updated ${new Date().toLocaleTimeString()}`;
    return false;
  };
  const node = h("section", {}, h("h1", {}, "Runs"), form, status,
    h("table", { class: "runs" }, h("caption", { class: "sr" }, "Recent runs, newest first"),
      h("thead", {}, h("tr", {}, ["Run id", "Workflow", "State", "Created", "Took"].map((c) => h("th", { scope: "col" }, c)))),
      body));
  return { node, cleanup: poll(tick, 2000) };
}
