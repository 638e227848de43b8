"""Step code for ``document-triage.yaml`` (next to it): an AI-shaped pipeline with no AI in it.

Every "model" is simulated so the demo runs offline and gives the same answer
for the same input: text, vectors and labels are derived from hashes of their
input, and latencies and transient failures from a ``random.Random`` seeded by
``ctx.idempotency_key``. A retried or redelivered step therefore sees the same
dice as its first attempt, which is what makes a run's behaviour reproducible.

Graph: fetch → chunk → embed (one per chunk); fetch → classify; summarize
waits for both chunk and classify; review (a human approval) happens only
when ``needs_review`` says so; store joins embed, classify, summarize and
review, and is undone by ``unstore`` if a later step fails; publish is last.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from typing import Literal

from pydantic import BaseModel

from orchestrator import StepContext, step

Topic = Literal["billing", "legal", "support", "research"]

_KEYWORDS: dict[Topic, tuple[str, ...]] = {
    "billing": ("invoice", "payment", "refund", "account", "balance", "charge"),
    "legal": ("contract", "clause", "liability", "party", "terms", "agreement"),
    "support": ("ticket", "error", "customer", "crash", "login", "outage"),
    "research": ("model", "dataset", "experiment", "baseline", "results", "paper"),
}
_FILLER = (
    "the", "team", "reviewed", "this", "week", "and", "noted", "that", "a", "new",
    "process", "was", "needed", "for", "each", "request", "with", "clear", "owner",
)  # fmt: skip


class ProviderError(RuntimeError):
    """A transient failure of the (simulated) model provider: worth a retry."""


class Document(BaseModel):
    url: str
    title: str
    text: str


class Chunk(BaseModel):
    doc_id: str
    index: int
    text: str


class Embedding(BaseModel):
    doc_id: str
    chunk_index: int
    vector: list[float]


class Label(BaseModel):
    url: str
    label: Topic
    confidence: float
    model: str


class Summary(BaseModel):
    doc_id: str
    label: Topic
    text: str


class StoredDoc(BaseModel):
    record_id: str
    doc_id: str
    url: str
    label: Topic
    confidence: float
    vectors: int
    dims: int
    summary_chars: int


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _doc_id(url: str) -> str:
    return _digest(url).hex()[:12]


def _latency(ctx: StepContext, low_ms: int, high_ms: int) -> None:
    """Sleep like a remote call would; seeded so a given step always takes as long."""
    rng = random.Random(f"latency/{ctx.idempotency_key}")
    time.sleep(rng.uniform(low_ms, high_ms) / 1000)


def _sentence(rng: random.Random, topic: Topic) -> str:
    words = []
    for _ in range(rng.randint(8, 14)):
        roll = rng.random()
        if roll < 0.25:
            words.append(rng.choice(_KEYWORDS[topic]))
        elif roll < 0.3:  # some off-topic vocabulary, so confidence is not always 1.0
            words.append(rng.choice(_KEYWORDS[rng.choice(list(_KEYWORDS))]))
        else:
            words.append(rng.choice(_FILLER))
    return " ".join(words).capitalize() + "."


@step
def fetch(url: str, ctx: StepContext) -> Document:
    """Simulated download: the url alone decides the text, so reruns agree."""
    _latency(ctx, 10, 40)
    rng = random.Random(f"document/{url}")
    topic: Topic = rng.choice(list(_KEYWORDS))
    paragraphs = [
        " ".join(_sentence(rng, topic) for _ in range(rng.randint(3, 5)))
        for _ in range(rng.randint(4, 8))
    ]
    title = f"{topic.title()} notes for {url.rstrip('/').rsplit('/', 1)[-1] or url}"
    return Document(url=url, title=title, text="\n\n".join(paragraphs))


@step
def chunk(fetch: Document) -> list[Chunk]:
    """Split on paragraphs: the unit the embedder and the summary both work on."""
    doc_id = _doc_id(fetch.url)
    parts = [p.strip() for p in fetch.text.split("\n\n") if p.strip()]
    return [Chunk(doc_id=doc_id, index=i, text=p) for i, p in enumerate(parts)]


@step
def embed(chunk: Chunk, ctx: StepContext) -> Embedding:
    """One element of the map: a unit vector of 8 floats hashed from the chunk's text."""
    _latency(ctx, 5, 30)
    raw = [b / 255 - 0.5 for b in _digest(chunk.text)[:8]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return Embedding(
        doc_id=chunk.doc_id, chunk_index=chunk.index, vector=[round(x / norm, 6) for x in raw]
    )


@step
def classify(fetch: Document, ctx: StepContext) -> Label:
    """Simulated LLM call that fails transiently on the first attempt for ~15% of runs.

    The failure is decided by a hash of the idempotency key and only on attempt
    1, so it is deterministic and the retry policy in the spec always recovers.
    """
    _latency(ctx, 20, 80)
    if ctx.attempt == 1 and _digest(f"fail/{ctx.idempotency_key}")[0] < 256 * 0.15:
        raise ProviderError(f"simulated provider overload (key {ctx.idempotency_key})")
    words = fetch.text.lower().replace(".", " ").split()
    hits = {t: sum(words.count(k) for k in kws) for t, kws in _KEYWORDS.items()}
    best = max(hits, key=lambda t: hits[t])
    confidence = hits[best] / max(1, sum(hits.values()))
    return Label(url=fetch.url, label=best, confidence=round(confidence, 3), model="sim-llm-1")


@step
def summarize(chunk: list[Chunk], classify: Label) -> Summary:
    """Lead sentences of the first chunks, framed by the label.

    It waits for classify as well as chunk because the framing depends on the
    label; that edge (without one from embed) is what makes the graph
    non-series-parallel, so a nested-chord canvas could not express it.
    """
    leads = [c.text.split(". ")[0].rstrip(".") + "." for c in chunk[:3]]
    text = f"[{classify.label}] " + " ".join(leads)
    return Summary(doc_id=chunk[0].doc_id, label=classify.label, text=text)


@step
def store(
    embed: list[Embedding], classify: Label, summarize: Summary, ctx: StepContext
) -> StoredDoc:
    """The join: checks its three inputs describe one document, then records it.

    The record id comes from the idempotency key, so a redelivered store would
    upsert the same record in a real database instead of adding a second one.
    """
    doc_id = _doc_id(classify.url)
    if {e.doc_id for e in embed} | {summarize.doc_id} != {doc_id}:
        raise ValueError(f"store for {doc_id}: inputs come from different documents")
    return StoredDoc(
        record_id="rec-" + _digest(ctx.idempotency_key).hex()[:12],
        doc_id=doc_id,
        url=classify.url,
        label=classify.label,
        confidence=classify.confidence,
        vectors=len(embed),
        dims=len(embed[0].vector) if embed else 0,
        summary_chars=len(summarize.text),
    )


class Approval(BaseModel):
    approved: bool
    by: str


class Published(BaseModel):
    record_id: str
    reviewed_by: str | None


class PublishError(RuntimeError):
    """Publishing refused the document: a failure after store, which the saga undoes."""


@step
def needs_review(classify: Label) -> bool:
    """Only documents the model is unsure about go to a person."""
    return classify.confidence < 0.9


@step
def unstore(store: StoredDoc, ctx: StepContext) -> None:
    """Compensation of ``store``: delete the record again (simulated, idempotent)."""
    _latency(ctx, 2, 10)


@step
def publish(store: StoredDoc, review: Approval | None, ctx: StepContext) -> Published:
    """The last step; a document whose URL says ``broken`` is refused here, after store."""
    _latency(ctx, 2, 10)
    if "broken" in store.url:
        raise PublishError(f"{store.url}: the publishing service refused it")
    return Published(record_id=store.record_id, reviewed_by=review.by if review else None)
