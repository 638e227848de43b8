"""The one place that reads what a Lua script answered.

Engine scripts answer ``[kind, ended, notes, *payload]`` (scripts/lib/
replies.lua): ``ended`` is the terminal state the call moved the run to, or
''; ``notes`` is the JSON list of the events the call appended, when the
caller asked (``observe``). Each parser here turns one script's answer into
the typed values of ``outcomes``; no other module indexes a reply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from orchestrator.resilience.decision import Veto
from orchestrator.states import RunState
from orchestrator.store import outcomes as o
from orchestrator.store.wire import context, optional, text

_opt = optional


def _number(value: Any) -> float | None:
    raw = _opt(value)
    return float(raw) if raw else None


class _Reply:
    """The common header of an engine script's answer."""

    def __init__(self, raw: Sequence[Any]) -> None:
        self.kind = text(raw[0])
        ended = text(raw[1]) if len(raw) > 1 else ""
        self.ended = RunState(ended) if ended else None
        notes = text(raw[2]) if len(raw) > 2 else ""
        self.decisions = decisions(notes)
        self.payload = list(raw[3:])

    def first(self) -> str:
        return text(self.payload[0]) if self.payload else ""


def decisions(notes: str) -> tuple[o.Decision, ...]:
    """The typed decisions behind a call's events (see outcomes); '' gives none.

    Every engine call of an observed worker comes through here (a step's
    completion carries about three), so it is kept to one loop and
    positional constructors.
    """
    if not notes:
        return ()
    found = []
    for e in json.loads(notes):
        d = _decision(e)
        if d is not None:
            found.append(d)
    return tuple(found)


def _decision(e: dict[str, Any]) -> o.Decision | None:
    step = e.get("step")
    if step is None:
        if "to" not in e:
            return None
        return o.RunMoved(e.get("from"), e["to"], e.get("error"), e.get("reason"))
    if "breaker" in e and "outcome" not in e:
        return o.BreakerMoved(step, e["dependency"], e["breaker"])
    if e.get("budget") == "denied":
        return o.BudgetRefused(step, e["dependency"])
    if "wait" in e:
        return o.AdmissionWait(step, e.get("index"), e["dependency"], e["wait"], e["delay"])
    if "compensation" in e:
        return o.CompensationNote(
            step, e["compensation"], e["attempt"], e.get("delay"), e.get("error")
        )
    if "to" in e or e.get("retry"):
        get = e.get
        return o.StepMoved(
            step,
            get("from"),
            get("to"),
            get("index"),
            get("attempt"),
            get("error"),
            get("delay"),
            get("signal"),
            get("worker"),
            get("reason"),
            get("waited"),
        )
    return None


def inputs(payload: Sequence[Any], observed: bool) -> o.Inputs:
    """An attempt's inputs: {attempt, input, mode, [queued at, started at, context,] name, value…}.

    The bracketed fields come only when the call was observed (replies.lua).
    """
    pairs = payload[6:] if observed else payload[3:]
    upstream = {text(pairs[k]): _opt(pairs[k + 1]) for k in range(0, len(pairs), 2)}
    mode = _MODES.get(payload[2]) or o.Mode(text(payload[2]))
    if not observed:
        return o.Inputs(int(payload[0]), text(payload[1]), mode, upstream)
    return o.Inputs(  # positional: every attempt of an observed worker comes through here
        int(payload[0]),
        text(payload[1]),
        mode,
        upstream,
        _number(payload[3]),
        _number(payload[4]),
        dict(_context(payload[5])),
    )


_MODES = {m.value.encode(): m for m in o.Mode}


@lru_cache(maxsize=1024)
def _context(raw: bytes | None) -> Mapping[str, str]:
    """A run's carried context, parsed once per run and process (every attempt brings it).

    Each attempt gets its own copy of the one parse (a dict copy costs a
    tenth of a parse), so a hook that changes its copy changes no other.
    """
    return MappingProxyType(context(raw))


def claim(raw: Sequence[Any], observed: bool) -> o.Claim:
    r = _Reply(raw)
    if r.kind in ("run", "gate"):
        return o.Run(inputs(r.payload, observed), r.decisions)
    if r.kind == "wait":
        return o.Wait(r.first(), float(text(r.payload[1])), r.decisions)
    if r.kind == "waiting":
        return o.Waiting(r.first(), r.decisions)
    if r.kind == "skip":
        return o.Skip(r.first(), r.decisions)
    if r.kind == "stop":
        return o.Stop(r.first(), r.decisions)
    if r.kind == "gone":
        return o.Gone(r.decisions)
    raise ValueError(f"claim answered {r.kind!r}")


def recording(raw: Sequence[Any], lane_token: str, observed: bool) -> o.Recording:
    """complete / fail: 'ok' | 'retry' {delay} | 'veto' {reason}, then the lane's next attempt."""
    r = _Reply(raw)
    if r.kind == "stale":
        return o.Stale(r.first(), r.decisions)
    if r.kind == "gone":
        return o.Gone(r.decisions)
    if r.kind == "fallback":
        return o.UseFallback(r.first(), r.decisions)
    if r.kind not in ("ok", "retry", "veto"):
        raise ValueError(f"recording answered {r.kind!r}")
    p = r.payload
    retry_in = _number(p[0]) if r.kind == "retry" else None
    veto = Veto(text(p[0])) if r.kind == "veto" else None
    if r.kind != "ok":
        p = p[1:]
    handoff = None
    if p:
        index = text(p[1])
        handoff = o.Handoff(
            text(p[0]), int(index) if index else None, lane_token, inputs(p[2:], observed)
        )
    return o.Recorded(
        ended=r.ended, retry_in=retry_in, veto=veto, handoff=handoff, decisions=r.decisions
    )


def settled(raw: Sequence[Any]) -> o.Settled:
    """skip / timeout: 'ok', 'stale' {state}, 'stop' {run state}, 'gone'."""
    r = _Reply(raw)
    if r.kind == "ok":
        return o.Recorded(ended=r.ended, decisions=r.decisions)
    if r.kind == "stale":
        return o.Stale(r.first(), r.decisions)
    if r.kind == "gone":
        return o.Gone(r.decisions)
    return o.Stop(r.first(), r.decisions)


def undo_claim(raw: Sequence[Any], observed: bool) -> o.Claim:
    return claim(raw, observed)


def undo_done(raw: Sequence[Any]) -> o.UndoRecording:
    r = _Reply(raw)
    if r.kind == "ok":
        return o.UndoRecorded(o.UndoOutcome(r.first()), r.ended, r.decisions)
    if r.kind == "stale":
        return o.Stale(r.first(), r.decisions)
    return o.Gone(r.decisions)


def submit(raw: Sequence[Any]) -> o.Submitted | o.NoPlan | o.Refused:
    r = _Reply(raw)
    if r.kind == "noplan":
        return o.NoPlan(r.first())
    if r.kind == "refused":
        scope, limit, queued = (text(x) for x in r.payload[:3])
        return o.Refused(scope, int(limit), int(queued))
    evicted = text(r.payload[1]) if len(r.payload) > 1 else ""
    return o.Submitted(r.first(), r.kind == "created", r.decisions, evicted)


def signal(raw: Sequence[Any]) -> o.SignalOutcome:
    r = _Reply(raw)
    p = [text(x) for x in r.payload]
    if r.kind == "ok":
        return o.Signalled(tuple(p), r.ended, r.decisions)
    if r.kind == "none":
        return o.NotWaiting(dict(zip(p[::2], p[1::2], strict=True)))
    if r.kind == "stop":
        return o.Stop(p[0])
    return o.Gone()


def cancel(raw: Sequence[Any]) -> o.CancelRequested | o.Final | o.Gone:
    r = _Reply(raw)
    if r.kind == "gone":
        return o.Gone()
    if r.kind == "final":
        return o.Final(r.first())
    return o.CancelRequested(r.first(), r.kind == "already", r.ended, r.decisions)


def resume(raw: Sequence[Any]) -> o.Resumed | o.WrongState | o.Gone:
    r = _Reply(raw)
    if r.kind == "gone":
        return o.Gone()
    if r.kind == "state":
        return o.WrongState(r.first())
    return o.Resumed(r.first(), r.kind == "created")


def recompensate(raw: Sequence[Any]) -> o.Reopened | o.WrongState | o.Gone:
    r = _Reply(raw)
    if r.kind == "gone":
        return o.Gone()
    if r.kind == "state":
        return o.WrongState(r.first())
    return o.Reopened(r.first())


def register(raw: Any) -> o.Registered | o.Conflict:
    answer = text(raw)
    if answer == "conflict":
        return o.Conflict()
    return o.Registered(answer == "created")


def members(raw: Sequence[Any]) -> list[str]:
    """sweep / due: the set members the script took."""
    return [text(m) for m in raw]


def redispatched(raw: Sequence[Any]) -> list[o.Redispatched]:
    """reconcile: "run|step|index" of each message sent again."""
    out = []
    for member in raw:
        run_id, step, idx = text(member).split("|")
        out.append(o.Redispatched(run_id, step, int(idx) if idx else None))
    return out


def schedule(raw: Any) -> o.ScheduleResult:
    """schedule.lua: one word."""
    return o.ScheduleResult(text(raw))


def spawn(raw: Sequence[Any]) -> o.SpawnOutcome:
    """'started' | 'existing' {child}; 'refused' {type, message} (failed for good); stale; gone."""
    r = _Reply(raw)
    if r.kind in ("started", "existing"):
        return o.Spawned(r.first(), r.kind == "started", r.decisions)
    if r.kind == "refused":
        return o.Recorded(ended=r.ended, decisions=r.decisions, failed=True)
    if r.kind == "stale":
        return o.Stale(r.first(), r.decisions)
    if r.kind == "gone":
        return o.Gone(r.decisions)
    raise ValueError(f"spawn answered {r.kind!r}")


def undo_child(raw: Sequence[Any]) -> o.ChildUndoOutcome:
    """'pending' | 'done' | 'failed' {child, error}; 'stale' {state}; 'gone'."""
    r = _Reply(raw)
    if r.kind == "stale":
        return o.Stale(r.first(), r.decisions)
    if r.kind == "gone":
        return o.Gone(r.decisions)
    if r.kind == "failed":
        return o.ChildrenUndone(o.ChildUndo.FAILED, r.first(), text(r.payload[1]))
    return o.ChildrenUndone(o.ChildUndo(r.kind))
