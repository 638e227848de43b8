// One run: its state, the actions an operator may take (each confirmed first), the graph
// coloured by state, the timeline of attempts and waits, and every step's attempts, error
// and output. Refreshed every second until the run ends.

import { api } from "./api.js";
import { badge, copyButton, duration, h, say, seconds, TERMINAL } from "./dom.js";
import { drawDag } from "./dag.js";
import { drawGantt } from "./gantt.js";
import { poll } from "./poll.js";

function pretty(value) {
  const text = JSON.stringify(value, null, 2) ?? "null";
  return text.length > 4000 ? `${text.slice(0, 4000)}\n… (${text.length} characters)` : text;
}

async function act(question, call, done) {
  if (!window.confirm(question)) return;
  try {
    const result = await call();
    say(done(result));
  } catch (err) {
    say(`Refused: ${err.message}`);
  }
}

function actions(doc, plan, refresh) {
  const id = doc.id;
  const out = [];
  for (const [name, st] of Object.entries(doc.steps)) {
    const signal = plan.steps[name]?.wait_for;
    if (st.state !== "WAITING" || !signal) continue;
    const data = h("textarea", { id: `data-${name}`, rows: 2, cols: 40, class: "mono" }, '{"approved": true, "by": "console"}');
    out.push(h("div", { class: "approve" },
      h("label", { for: `data-${name}` }, `Data for signal “${signal}” (JSON)`), data,
      h("button", { type: "button", class: "primary", "data-action": "approve", "data-step": name,
        onclick: () => act(`Send signal “${signal}” to step ${name} of run ${id}?`, () => {
          let value;
          try { value = JSON.parse(data.value || "null"); } catch { throw new Error("the data is not valid JSON"); }
          return api(`/runs/${id}/signals/${encodeURIComponent(signal)}`, { method: "POST", body: { data: value } });
        }, (r) => `Signal ${signal}: completed ${r.completed.join(", ")}`).then(refresh) },
      `✓ Approve ${name}`)));
  }
  const terminal = TERMINAL.has(doc.state);
  if (!terminal && doc.state !== "CANCELLING") {
    out.push(h("button", { type: "button", class: "danger", "data-action": "cancel",
      onclick: () => act(`Cancel run ${id}? Completed steps with effects are compensated.`,
        () => api(`/runs/${id}/cancel`, { method: "POST", body: { reason: "cancelled from the console" } }),
        (r) => `Run ${id}: ${r.state}`).then(refresh) }, "⊘ Cancel run"));
  }
  if (doc.state === "FAILED") {
    out.push(h("button", { type: "button", "data-action": "retry",
      onclick: () => act(`Retry run ${id} from its failed steps (as a new run)?`,
        () => api(`/runs/${id}/retry`, { method: "POST" }),
        (r) => { location.hash = `#/runs/${r.id}`; return `Resumed as run ${r.id}`; }) }, "↻ Retry"));
  }
  const undoFailed = Object.values(doc.steps).some((st) => st.state === "COMPENSATION_FAILED");
  if (doc.state === "COMPENSATION_FAILED" || (doc.state === "CANCELLED" && undoFailed)) {
    out.push(h("button", { type: "button", "data-action": "compensate",
      onclick: () => act(`Retry the failed compensation of run ${id}?`,
        () => api(`/runs/${id}/compensate`, { method: "POST" }),
        (r) => `Run ${id}: ${r.state}`).then(refresh) }, "↶ Compensate again"));
  }
  return out;
}

function stepBody(st, mine) {
  return [
    st.error ? h("p", { class: "error" }, h("strong", {}, "Error: "), st.error) : null,
    h("h4", {}, "Output"), h("pre", { class: "mono" }, pretty(st.output)),
    h("h4", {}, "Attempts and moves"),
    h("ol", { class: "moves" }, mine.map((e) => h("li", {},
      `${new Date(e.t * 1000).toISOString().slice(11, 23)} `,
      e.to ? `${e.from ?? "—"} → ${e.to}` : (e.note || e.kind || "note"),
      e.attempt ? ` (attempt ${e.attempt})` : "",
      e.index !== undefined ? ` [element ${e.index}]` : "",
      e.error ? ` · ${typeof e.error === "string" ? e.error : JSON.stringify(e.error)}` : ""))),
  ].filter(Boolean);
}

// A step's body is built when it is first opened: a run of 1,000 steps draws 1,000
// summaries, not their outputs and moves too.
function stepDetails(doc, events, openSteps) {
  const byStep = {};
  for (const e of events) if (e.step) (byStep[e.step] ||= []).push(e);
  return Object.entries(doc.steps).map(([name, st]) => {
    const progress = st.elements !== undefined
      ? ` · ${st.elements - (st.elements_left ?? 0)}/${st.elements} elements` : "";
    const details = h("details", { id: `step-${name}`, "data-step": name, open: openSteps.has(name) },
      h("summary", {}, h("strong", {}, name), " ", badge(st.state),
        ` · ${st.attempts} attempt${st.attempts === 1 ? "" : "s"}${progress}`,
        st.started_at ? ` · ran ${duration(seconds(st.started_at, st.finished_at))}` : ""));
    const fill = () => details.append(...stepBody(st, byStep[name] || []));
    if (details.open) fill();
    else details.addEventListener("toggle", fill, { once: true });
    return details;
  });
}

export function runPage(id) {
  const head = h("div", { class: "runhead" });
  const buttons = h("div", { class: "actions", role: "group", "aria-label": "Run actions" });
  const graph = h("div");
  const timeline = h("div");
  const steps = h("div", { class: "steps" });
  let plan = null, actionKey = "", first = true;

  const tick = async () => {
    const [doc, events, planned] = await Promise.all([
      api(`/runs/${encodeURIComponent(id)}`), api(`/runs/${encodeURIComponent(id)}/events`),
      plan || api(`/runs/${encodeURIComponent(id)}/plan`)]);
    plan = planned;
    if (first) performance.mark("run-fetched");
    const open = new Set([...steps.querySelectorAll("details[open]")].map((d) => d.dataset.step));
    head.replaceChildren(...[
      h("p", {}, h("a", { href: `#/workflows/${encodeURIComponent(doc.workflow)}` }, doc.workflow),
        ` v${doc.version} · `, h("span", { id: "run-state" }, badge(doc.state)),
        ` · created ${doc.created_at ? new Date(doc.created_at).toLocaleString() : ""}`,
        doc.finished_at ? ` · took ${duration(seconds(doc.created_at, doc.finished_at))}` : ""),
      doc.error ? h("p", { class: "error" }, h("strong", {}, "Error: "), doc.error) : null,
    ].filter(Boolean));
    const acts = actions(doc, plan, () => tick());
    const key = acts.map((a) => a.textContent).join("|");
    if (key !== actionKey) {
      actionKey = key;
      buttons.replaceChildren(...(acts.length ? acts : [h("p", { class: "muted" }, "No action applies now.")]));
    }
    graph.replaceChildren(drawDag(plan, { status: doc.steps,
      onSelect: (n) => { const d = document.getElementById(`step-${n}`); d.open = true; d.querySelector("summary").focus(); } }));
    timeline.replaceChildren(drawGantt(Object.keys(doc.steps), events, { ended: TERMINAL.has(doc.state) }));
    steps.replaceChildren(...stepDetails(doc, events, open));
    if (first) {
      first = false;
      performance.mark("run-rendered");
    }
    document.body.dataset.runState = doc.state;
    return TERMINAL.has(doc.state);
  };
  const node = h("section", {},
    h("h1", {}, "Run ", h("span", { class: "mono" }, id), " ", copyButton(id, "Copy run id")),
    head, h("h2", {}, "Actions"), buttons, h("h2", {}, "Graph"), graph,
    h("h2", {}, "Timeline"), timeline, h("h2", {}, "Steps"), steps);
  const cleanup = poll(async () => {
    try {
      return await tick();
    } catch (err) {
      head.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
      return err.status === 404;
    }
  }, 1000);
  return { node, cleanup };
}
