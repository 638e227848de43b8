#!/usr/bin/env bash
# The HTTP API with curl, step by step. Start a server first (`orch dev`, or `orch serve`
# next to running workers), then run this from the repository root:
#   bash examples/http/walkthrough.sh
# ORCH_API_URL (default http://127.0.0.1:8080) and ORCH_API_TOKEN override where and how.
set -euo pipefail
API="${ORCH_API_URL:-http://127.0.0.1:8080}/api"
auth=()
if [ -n "${ORCH_API_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $ORCH_API_TOKEN"); fi
say() { printf '\n### %s\n' "$*"; }
# The first N characters of a response. The whole body is read before it is cut, so curl
# never writes into a closed pipe (which `curl | head -c N` does under pipefail).
peek() { local n=$1 body; shift; body=$(curl -sS "${auth[@]}" "$@"); printf '%s ...\n' "${body:0:n}"; }

say "1. Submit the demo workflow (registered by 'orch demo' or 'orch submit'), with a key"
run=$(curl -sS --fail-with-body "${auth[@]}" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: walkthrough-1' \
  -d '{"workflow": "document-triage", "input": {"url": "https://example.com/doc/1"}}' \
  "$API/runs")
echo "$run"
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$run")

say "2. The same key gives the same run"
curl -sS "${auth[@]}" -H 'Content-Type: application/json' -H 'Idempotency-Key: walkthrough-1' \
  -d '{"workflow": "document-triage", "input": {"url": "https://example.com/doc/1"}}' "$API/runs"

say "3. Its status (the document 'orch status --json' prints)"
peek 600 "$API/runs/$id"

say "4. If it waits for a human, approve it (a signal)"
curl -sS "${auth[@]}" -H 'Content-Type: application/json' \
  -d '{"data": {"approved": true, "by": "curl"}}' "$API/runs/$id/signals/approval" || true

say "5. Its history, the recent runs of this workflow, and an error (problem+json)"
peek 300 "$API/runs/$id/events"
peek 300 "$API/runs?workflow=document-triage&limit=3"
curl -sS -i "${auth[@]}" "$API/runs/no-such-run" | sed -n '1p;/^content-type/Ip;$p'

say "6. Cancel it (idempotent; a finished run keeps its state)"
curl -sS "${auth[@]}" -X POST "$API/runs/$id/cancel"

say "7. The workflow's graph, coverage and scorecard"
curl -sS "${auth[@]}" "$API/workflows/document-triage/versions/4/coverage"; echo
peek 300 "$API/metrics?workflow=document-triage"
echo; echo "The whole API: ${API%/api}/openapi.json · the console: ${API%/api}/console/"
