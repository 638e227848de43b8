// A producer in Node.js (18+, no dependency: the built-in fetch): submit a run over the
// HTTP API, follow it until it ends, print its status document.
//
//   node producer.mjs WORKFLOW [INPUT_JSON] [IDEMPOTENCY_KEY]
//
// WORKFLOW is a registered name[:version], or a path to a workflow spec in JSON.
// ORCH_API_URL (default http://127.0.0.1:8080) and ORCH_API_TOKEN (when the server asks
// for one) say where and how. Exit codes are the CLI's: 0 succeeded, 1 the run did not
// succeed, 2 refused (bad request, spec or state), 3 the orchestrator is unreachable.

import { readFileSync } from "node:fs";

const BASE = (process.env.ORCH_API_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const TOKEN = process.env.ORCH_API_TOKEN || "";
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "COMPENSATED", "COMPENSATION_FAILED"]);

class Problem extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function call(method, path, body, headers = {}) {
  let response;
  try {
    response = await fetch(`${BASE}/api${path}`, {
      method,
      headers: {
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...(TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new Problem(503, `cannot reach ${BASE}: ${err.cause?.code || err.message}`);
  }
  const data = await response.json();
  // errors are RFC 9457 problem details: one line in `detail`, as the CLI prints it
  if (!response.ok) throw new Problem(response.status, data.detail);
  return data;
}

async function main([workflowArg, inputArg = "{}", key]) {
  if (!workflowArg) throw new Problem(400, "usage: node producer.mjs WORKFLOW [INPUT_JSON] [KEY]");
  const workflow = workflowArg.endsWith(".json")
    ? JSON.parse(readFileSync(workflowArg, "utf8"))
    : workflowArg;
  const headers = key ? { "Idempotency-Key": key } : {};
  const { id } = await call("POST", "/runs", { workflow, input: JSON.parse(inputArg) }, headers);
  console.error(`submitted run ${id}`);
  for (;;) {
    const doc = await call("GET", `/runs/${id}`);
    if (TERMINAL.has(doc.state)) {
      console.log(JSON.stringify(doc, null, 2));
      return doc.state === "SUCCEEDED" ? 0 : 1;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`producer: error: ${err.message}`);
    process.exit(err.status === 503 ? 3 : err instanceof Problem ? 2 : 1);
  },
);
