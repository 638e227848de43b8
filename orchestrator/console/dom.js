// Building DOM (HTML and SVG) without innerHTML: every text the API returns is data.

const SVG = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
export const s = (tag, attrs, ...children) =>
  fill(document.createElementNS(SVG, tag), attrs, children);

// Every state has a word and a glyph, so colour is never the only signal.
export const STATES = {
  PENDING: "○", QUEUED: "⋯", RUNNING: "▶", RETRYING: "↻", WAITING: "⏸", SUCCEEDED: "✓",
  FAILED: "✗", SKIPPED: "⤼", CANCELLING: "⊘", CANCELLED: "⊘", COMPENSATING: "↶",
  COMPENSATED: "↺", COMPENSATION_FAILED: "⚠",
};
export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "COMPENSATED",
  "COMPENSATION_FAILED"]);

export function badge(state) {
  return h("span", { class: `state st-${state}` },
    h("span", { "aria-hidden": "true" }, STATES[state] || "•"), " ", state);
}

export function seconds(a, b) {
  if (!a || !b) return null;
  return (Date.parse(b) - Date.parse(a)) / 1000;
}

export function duration(sec) {
  if (sec === null || sec === undefined) return "";
  return sec < 1 ? `${(sec * 1000).toFixed(0)} ms` : `${sec.toFixed(2)} s`;
}

export function copyButton(text, label) {
  return h("button", {
    type: "button", class: "copy", "aria-label": label || `Copy ${text}`,
    onclick: async (ev) => {
      try {
        await navigator.clipboard.writeText(text);
        ev.target.textContent = "Copied";
      } catch {
        ev.target.textContent = "Select the id";
      }
      setTimeout(() => { ev.target.textContent = "Copy"; }, 1500);
    },
  }, "Copy");
}

export function say(message) {
  document.getElementById("notice").textContent = message;
}
