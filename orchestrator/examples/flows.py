"""The document-triage workflow built with the Python DSL instead of YAML.

Both spellings must produce the same ``Workflow``: identity is the content
hash, so a DSL build and the YAML file are interchangeable for ``submit`` and
can never register as two different contents for ``document-triage:4``.
Run ``python -m orchestrator.examples.flows`` to compare the two hashes.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator import Flow, Workflow, load_workflow
from orchestrator.examples import triage

YAML_PATH = Path(__file__).with_name("document-triage.yaml")
DESCRIPTION = "Fetch, chunk, embed, classify, summarize and store one document (simulated models)."


def triage_flow() -> Workflow:
    """fetch → chunk → embed[map]; fetch → classify; [chunk, classify] → summarize → store."""
    classify_retry = {
        "max_attempts": 4,
        "initial": "50ms",
        "max": "1s",
        "retry_on": ["ProviderError"],
    }
    return (
        Flow("document-triage", 4, description=DESCRIPTION, input={"url": "str"})
        .step("fetch", triage.fetch)
        .step("chunk", triage.chunk, after=["fetch"])
        .step("embed", triage.embed, after=["chunk"], map="chunk")
        .step("classify", triage.classify, after=["fetch"], retry=classify_retry)
        .step("summarize", triage.summarize, after=["chunk", "classify"])
        .step(
            "review",
            wait_for="approval",
            after=["classify"],
            when=triage.needs_review,
            timeout="1h",
        )
        .step(
            "store",
            triage.store,
            after=["embed", "classify", "summarize", "review"],
            trigger="none_failed",
            effects=True,
            compensate=triage.unstore,
        )
        .step(
            "publish",
            workflow="document-publish:1",
            after=["store", "review"],
            trigger="none_failed",
            retry={"max_attempts": 1},
        )
        .build(import_tasks=True)
    )


def main() -> None:
    dsl = triage_flow()
    yaml = load_workflow(YAML_PATH, import_tasks=True)
    print(f"DSL  {dsl.ref} {dsl.content_hash}")
    print(f"YAML {yaml.ref} {yaml.content_hash}")
    if dsl.content_hash != yaml.content_hash:
        raise SystemExit("the DSL and YAML spellings of document-triage differ")
    print("same workflow")


if __name__ == "__main__":
    main()
