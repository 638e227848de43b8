// The console: a hash router over four pages (runs, run, workflows, scorecard). Pages that
// show something moving poll the API (runs every 2 s, a run every second until it ends).

import { api, setToken } from "./api.js";
import { h, say } from "./dom.js";
import { runsPage } from "./runs.js";
import { runPage } from "./run.js";
import { workflowsPage, workflowPage } from "./workflows.js";
import { scorecardPage } from "./scorecard.js";

let stop = () => {};

const ROUTES = [
  [/^#\/runs\/([^/]+)$/, (m) => runPage(decodeURIComponent(m[1]))],
  [/^#\/workflows\/([^/]+)$/, (m) => workflowPage(decodeURIComponent(m[1]))],
  [/^#\/workflows$/, () => workflowsPage()],
  [/^#\/scorecard$/, () => scorecardPage()],
  [/^#\/runs$/, () => runsPage()],
];

async function route() {
  stop();
  stop = () => {};
  const hash = location.hash.split("?")[0] || "#/runs";
  const view = document.getElementById("view");
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (hash.startsWith(`#/${a.dataset.nav}`)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const [pattern, page] of ROUTES) {
    const m = hash.match(pattern);
    if (!m) continue;
    const { node, cleanup } = page(m);
    view.replaceChildren(node);
    stop = cleanup || stop;
    return;
  }
  location.hash = "#/runs";
}

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setToken(document.getElementById("token").value);
  document.getElementById("token-form").hidden = true;
  say("Token set for this tab.");
  route();
});

window.addEventListener("hashchange", () => {
  route();
  document.getElementById("view").focus();
});
route();

