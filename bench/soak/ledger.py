"""The soak's accounting, from what the run left behind: no I/O here, so the tests can feed it
crafted records (a lost event, a duplicate, a stuck row) and see it complain.

Inputs:
- ``fired``: how many times WHMCS (the sandbox) ran each hook the stub forwards
  asynchronously: the events the stub created;
- ``access``: gunicorn's access log (one :class:`Request` per line);
- ``batch_results``: what the bridge answered for each event of each batch it took (webhook
  id, ``queued`` / ``duplicate`` / ``rejected``), read off the answers by the soak's proxy
  (:func:`parse_batch_answer`): the access log sees a batch, not its events;
- ``module_log``: the stub's WHMCS module log entries (spooled, rejected, lost events);
- ``inbox``: vipgate's inbox rows at the end; ``spooled``: webhook ids still in the spool;
- ``audit``: vipgate's audit rows (what it changed, and for which event);
- ``faults``: what was injected when; ``memory``: resident memory samples per process.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HOOK_PATH = "/hooks/whmcs"
BATCH_PATH = "/hooks/whmcs/batch"  # the stub's outbox delivery: many events, one request
INGEST_PATHS = (HOOK_PATH, BATCH_PATH)
# The AfterCronJob whose flush found the bridge not taking events sends no heartbeat (and logs
# it without a webhook id: there was no request).
HEARTBEAT_SKIPPED = "heartbeat not sent"
SYNC_RECONCILE_HOOK = "PreCronJob"
SETTLED = ("done", "dead", "discarded")
# A request answered with 5xx this long after a fault ended still counts as the fault's.
FAULT_SLACK = 10.0
# Memory: a process "grew" when its late resident size exceeds its early one by this much.
GROWTH_KIB = 16 * 1024
GROWTH_RATIO = 0.15
# ... judged only for processes that lived through this share of the run (gunicorn's workers
# before the bridge's restart do; a worker started after a SIGKILL may not).
LIVED_SHARE = 0.4

_ACCESS = re.compile(r"\[(?P<t>[^\]]+)\] (?P<status>\d{3}) (?P<us>\d+) (?P<id>\S+) "
                     r"(?P<method>\S+) (?P<path>\S+)")


@dataclass(frozen=True)
class Request:
    at: float  # epoch seconds (whole seconds, as gunicorn logs them)
    status: int
    micros: int
    webhook_id: str  # "-" when the request had none
    method: str
    path: str


@dataclass(frozen=True)
class InboxRow:
    webhook_id: str
    hook: str
    state: str
    attempts: int
    occurred_at: float
    received_at: float
    finished_at: float | None
    last_error: str | None = None


@dataclass(frozen=True)
class Fault:
    name: str
    started: float
    ended: float
    detail: str = ""


@dataclass
class Ledger:
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_access(lines: Iterable[str]) -> list[Request]:
    """gunicorn access lines in :data:`procs.ACCESS_FORMAT`; others are skipped."""
    out = []
    for line in lines:
        match = _ACCESS.match(line.strip())
        if match is None:
            continue
        at = datetime.strptime(match["t"], "%d/%b/%Y:%H:%M:%S %z").timestamp()
        out.append(Request(at, int(match["status"]), int(match["us"]), match["id"],
                           match["method"], match["path"]))
    return out


def parse_batch_answer(raw: bytes) -> list[tuple[str, str]]:
    """(webhook id, status) of each event in one HTTP answer of ``POST /hooks/whmcs/batch`` as
    it went back to the stub (status line, headers, JSON body); nothing for any other answer
    (not 200, not a batch's, cut short)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or \
            status_line[1] != b"200":
        return []
    try:
        answer = json.loads(body)
    except ValueError:
        return []
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        return []
    return [(str(r["id"]), str(r.get("status"))) for r in results
            if isinstance(r, dict) and isinstance(r.get("id"), str)]


def epoch(naive_utc: datetime | None) -> float | None:
    return None if naive_utc is None else naive_utc.replace(tzinfo=UTC).timestamp()


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def _in_fault(at: float, faults: Sequence[Fault]) -> str | None:
    """The fault running at ``at``; else the one that ended less than FAULT_SLACK before."""
    for slack in (0.0, FAULT_SLACK):
        for fault in faults:
            if fault.started - 1 <= at <= fault.ended + slack:
                return fault.name
    return None


def account(*, fired: Mapping[str, int], access: Sequence[Request],
            module_log: Sequence[Mapping[str, Any]], inbox: Sequence[InboxRow],
            spooled: Sequence[str], audit: Sequence[Mapping[str, Any]],
            faults: Sequence[Fault], memory: Sequence[tuple[float, str, int, int]],
            resync_changes: int | None, warmup_s: float,
            batch_results: Sequence[tuple[str, str]] = ()) -> Ledger:
    ledger = Ledger()
    _events(ledger, fired, access, module_log, inbox, spooled, audit, batch_results)
    _latency(ledger, access, inbox, faults)
    _recovery(ledger, access, inbox, faults)
    _memory(ledger, memory, warmup_s)
    ledger.figures["resync_dry_run_changes"] = resync_changes
    if resync_changes is None:
        ledger.problems.append("the final resync --dry-run did not give a plan")
    elif resync_changes:
        ledger.problems.append(f"the final resync --dry-run planned {resync_changes} "
                               "change(s): WHMCS and vipgate disagree after the soak")
    return ledger


def _stub_outcomes(module_log: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """webhook id → {"hook", "outcome"} from the stub's module log (last word wins)."""
    outcomes: dict[str, dict[str, str]] = {}
    for entry in module_log:
        request = entry.get("request")
        response = str(entry.get("response") or "")
        if not isinstance(request, Mapping) or not request.get("webhook_id"):
            continue
        msg_id = str(request["webhook_id"])
        hook = str(entry.get("action") or "")
        if "it is lost" in response:
            outcome = "lost"
        elif "rejected" in response:
            outcome = "rejected"
        elif "heartbeat not spooled" in response:
            outcome = "heartbeat_dropped"
        elif "spooled" in response or "still unreachable" in response:
            outcome = "spooled"
        else:
            continue
        known = outcomes.setdefault(msg_id, {"hook": hook, "outcome": outcome})
        if hook != "flush":
            known["hook"] = hook
        known["outcome"] = outcome if outcome != "spooled" or known["outcome"] != "lost" \
            else "lost"
    return outcomes


def _skipped_heartbeats(module_log: Sequence[Mapping[str, Any]]) -> int:
    """AfterCronJob runs that sent no heartbeat: their flush found the bridge not taking
    events (the breaker's "tried once"), so the cron is not kept waiting twice."""
    return sum(1 for entry in module_log if entry.get("action") == "AfterCronJob"
               and HEARTBEAT_SKIPPED in str(entry.get("response") or ""))


def _events(ledger: Ledger, fired: Mapping[str, int], access: Sequence[Request],
            module_log: Sequence[Mapping[str, Any]], inbox: Sequence[InboxRow],
            spooled: Sequence[str], audit: Sequence[Mapping[str, Any]],
            batch_results: Sequence[tuple[str, str]] = ()) -> None:
    problems = ledger.problems
    stub = _stub_outcomes(module_log)
    by_id = {row.webhook_id: row for row in inbox}
    stored = Counter(row.hook for row in inbox)
    states = Counter(row.state for row in inbox)
    deliveries = Counter(r.webhook_id for r in access
                         if r.path == HOOK_PATH and r.method == "POST" and r.status == 202)
    dropped_heartbeats = Counter(v["hook"] for v in stub.values()
                                 if v["outcome"] == "heartbeat_dropped")
    dropped_heartbeats["AfterCronJob"] += _skipped_heartbeats(module_log)
    # Batches (the outbox's delivery) carry many events under one batch id: their events are
    # accounted for by the inbox against what WHMCS fired, not by the access log.
    batches = Counter(r.status for r in access if r.path == BATCH_PATH and r.method == "POST")
    lost_logged = [k for k, v in stub.items() if v["outcome"] == "lost"]
    rejected = [k for k, v in stub.items() if v["outcome"] == "rejected"]
    still_spooled = set(spooled)
    spooled_ever = [k for k, v in stub.items() if v["outcome"] == "spooled"]

    # Events a batch's answer said the bridge has (stored now, or a duplicate of one it had).
    batch_taken = Counter(k for k, status in batch_results if status in ("queued", "duplicate"))
    acked_missing = sorted(k for k in deliveries.keys() | batch_taken.keys() if k not in by_id)
    if acked_missing:
        problems.append(f"{len(acked_missing)} event(s) answered 202 but not in the inbox "
                        f"(lost after the acknowledgement: a 202, or queued/duplicate in a "
                        f"batch's answer), e.g. {acked_missing[:3]}")
    if lost_logged:
        problems.append(f"{len(lost_logged)} event(s) the stub could neither send nor spool "
                        f"(lost in WHMCS), e.g. {lost_logged[:3]}")
    if rejected:
        problems.append(f"{len(rejected)} event(s) refused by the bridge (4xx) and dropped "
                        f"by the stub, e.g. {rejected[:3]}")
    if still_spooled:
        problems.append(f"{len(still_spooled)} event(s) still in the stub's spool at the end")

    per_hook = {}
    for hook in sorted(set(fired) | set(stored)):
        expected = fired.get(hook, 0) - dropped_heartbeats.get(hook, 0)
        found = stored.get(hook, 0)
        per_hook[hook] = {"fired": fired.get(hook, 0), "stored": found,
                          "heartbeats_not_spooled": dropped_heartbeats.get(hook, 0)}
        if found < expected:
            problems.append(f"{hook}: WHMCS fired {expected} event(s) (heartbeats not "
                            f"spooled left out), vipgate stored {found}: "
                            f"{expected - found} missing")
        elif found > expected:
            problems.append(f"{hook}: vipgate stored {found} event(s), WHMCS fired only "
                            f"{expected}")
    unsettled = [row for row in inbox if row.state not in SETTLED]
    if unsettled:
        problems.append(f"{len(unsettled)} event(s) not settled at the end (states "
                        f"{dict(Counter(r.state for r in unsettled))})")
    dead = [row for row in inbox if row.state == "dead"]
    applied_twice = Counter(
        (a.get("event_id"), a.get("action"), a.get("client_id"), a.get("ticket_id"),
         a.get("before"), a.get("after")) for a in audit if a.get("event_id"))
    twice = {k: n for k, n in applied_twice.items() if n > 1}
    if twice:
        problems.append(f"{len(twice)} change(s) applied more than once for the same event, "
                        f"e.g. {list(twice)[:2]}")
    # Sent again: an event the bridge already had, sent once more (a php process killed after
    # its batch was stored, before it deleted the rows; a retry after a lost answer). The
    # single endpoint answers 202 each time, a batch "duplicate"; the inbox keeps one row.
    redelivered = Counter({k: n - 1 for k, n in deliveries.items() if n > 1})
    in_batches = Counter(k for k, status in batch_results if status == "duplicate")
    redelivered.update(in_batches)
    ledger.figures["events"] = {
        "sent": sum(fired.values()),
        "stored": len(inbox),
        "applied": states.get("done", 0),
        "dead_lettered": len(dead),
        "unsettled": len(unsettled),
        "lost": len(acked_missing) + len(lost_logged) + max(
            0, sum(fired.values()) - sum(dropped_heartbeats.values()) - len(inbox)),
        "duplicate_deliveries": sum(redelivered.values()),
        "events_delivered_more_than_once": len(redelivered),
        "duplicates_in_batches": sum(in_batches.values()),
        "batch_events_answered": len(batch_results),
        "spooled_by_the_stub": len(spooled_ever),
        "heartbeats_not_spooled": sum(dropped_heartbeats.values()),
        "batches": sum(batches.values()),
        "batches_taken": batches.get(200, 0),
        "rejected": len(rejected),
        "applied_twice": len(twice),
        "attempts": dict(sorted(Counter(row.attempts for row in inbox).items())),
        "per_hook": per_hook,
    }
    ledger.figures["dead_letters"] = [
        {"webhook_id": r.webhook_id, "hook": r.hook, "attempts": r.attempts,
         "error": (r.last_error or "")[:300]} for r in dead[:20]]


def _latency(ledger: Ledger, access: Sequence[Request], inbox: Sequence[InboxRow],
             faults: Sequence[Fault]) -> None:
    posts = [r for r in access if r.path == HOOK_PATH and r.method == "POST"]
    hook_of = {row.webhook_id: row.hook for row in inbox}
    # PreCronJob is answered after vipgate reconciled everyone (up to [bridge]
    # precron_wait_seconds): its own line, not the ingest's.
    ingest = [r.micros / 1000 for r in posts
              if r.status == 202 and hook_of.get(r.webhook_id) != SYNC_RECONCILE_HOOK]
    precron = [r.micros / 1000 for r in posts
               if r.status == 202 and hook_of.get(r.webhook_id) == SYNC_RECONCILE_HOOK]
    answers = [r.micros / 1000 for r in posts if r.status == 200]
    statuses = Counter(str(r.status) for r in posts)
    batches = [r for r in access if r.path == BATCH_PATH and r.method == "POST"]
    batch_ms = [r.micros / 1000 for r in batches if r.status == 200]
    ingest_posts = [*posts, *batches]
    outside = [r for r in ingest_posts if r.status >= 500 and _in_fault(r.at, faults) is None]
    if outside:
        ledger.problems.append(f"{len(outside)} request(s) answered 5xx outside any fault "
                               f"window, e.g. status {outside[0].status} at {outside[0].at:.0f}")
    lag = [row.finished_at - row.received_at for row in inbox
           if row.state == "done" and row.finished_at is not None]

    ledger.figures["latency_ms"] = {"ingest_202": _summary(ingest),
                                    "answers_200": _summary(answers),
                                    "precron_202": _summary(precron),
                                    "batch_200": _summary(batch_ms)}
    ledger.figures["apply_lag_s"] = _summary(lag)
    ledger.figures["apply_lag_by_backlog_s"] = lag_by_backlog(
        [(row.received_at, row.finished_at) for row in inbox
         if row.state == "done" and row.finished_at is not None])
    ledger.figures["statuses"] = dict(sorted(statuses.items()))
    ledger.figures["batch_statuses"] = dict(sorted(Counter(str(r.status)
                                                           for r in batches).items()))
    ledger.figures["5xx_by_fault"] = dict(Counter(
        _in_fault(r.at, faults) or "none" for r in ingest_posts if r.status >= 500))


BACKLOG_BUCKETS = ((0, 9), (10, 99), (100, None))  # events waiting when one was received


def backlog_at_receipt(rows: Sequence[tuple[float, float | None]]) -> list[int]:
    """For each (received, finished) event: how many others were received and not yet
    finished when it was received (the queue it joined). An unfinished event waits forever."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], i))  # ties: in given order
    finished = sorted(f for _, f in rows if f is not None)
    out = [0] * len(rows)
    for ahead, i in enumerate(order):  # received before it, less those finished by then
        out[i] = max(0, ahead - bisect.bisect_right(finished, rows[i][0]))
    return out


def lag_by_backlog(rows: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """received → applied (s) of applied events, by the backlog each one joined: a lag
    that comes from the workers' own pace, or from a burst (a breaker's minute, a cron's flush,
    an outage) waiting ahead of it."""
    depths = backlog_at_receipt(rows)
    out: dict[str, Any] = {}
    for low, high in BACKLOG_BUCKETS:
        lags = [f - r for (r, f), d in zip(rows, depths, strict=True)
                if d >= low and (high is None or d <= high)]
        out[f"{low}-{high}" if high is not None else f"{low}+"] = _summary(lags)
    out["max_backlog"] = max(depths, default=0)
    return out


def _summary(values: Sequence[float]) -> dict[str, Any]:
    return {"count": len(values), "p50": percentile(values, 50),
            "p99": percentile(values, 99), "max": max(values) if values else None}


def _recovery(ledger: Ledger, access: Sequence[Request], inbox: Sequence[InboxRow],
              faults: Sequence[Fault]) -> None:
    """Per fault: when ingest answered 2xx again, and when every event that happened from
    10 s before the fault to its end was applied (or dead-lettered)."""
    ok_times = sorted(r.at for r in access if r.path in INGEST_PATHS and 200 <= r.status < 300)
    out = []
    for fault in faults:
        ingest_back = next((t for t in ok_times if t >= fault.ended), None)
        window = [row for row in inbox if fault.started - 10 <= row.occurred_at <= fault.ended]
        pending = [row for row in window if row.finished_at is None]
        settled_at = max((row.finished_at for row in window if row.finished_at is not None),
                         default=None)
        ingest_s = None if ingest_back is None else max(0.0, ingest_back - fault.ended)
        backlog_s = None if settled_at is None or pending else max(0.0,
                                                                     settled_at - fault.ended)
        recovery = None if ingest_s is None or (window and backlog_s is None) else max(
            ingest_s, backlog_s or 0.0)
        out.append({"fault": fault.name, "detail": fault.detail,
                    "at_s": round(fault.started, 1), "lasted_s": round(
                        fault.ended - fault.started, 1),
                    "events_in_window": len(window), "ingest_back_s": ingest_s,
                    "backlog_applied_s": backlog_s, "recovery_s": recovery})
        if recovery is None:
            ledger.problems.append(f"{fault.name}: no recovery seen (ingest back: "
                                   f"{ingest_s}, events pending: {len(pending)})")
    ledger.figures["recovery"] = out


def _memory(ledger: Ledger, samples: Sequence[tuple[float, str, int, int]],
            warmup_s: float) -> None:
    """Per process that lived through :data:`LIVED_SHARE` of the run: resident size early
    (its first fifth of samples after its own warm-up, ``warmup_s`` from its first sample:
    a worker started by a fault warms up too) and late (its last fifth)."""
    series: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)
    for at, role, pid, kib in samples:
        series[(role, pid)].append((at, kib))
    series = {key: [p for p in points if p[0] >= points[0][0] + warmup_s]
              for key, points in series.items()}
    series = {key: points for key, points in series.items() if points}
    if not series:
        ledger.figures["memory"] = []
        return
    start = min(s[0][0] for s in series.values())
    end = max(s[-1][0] for s in series.values())
    rows = []
    for (role, pid), points in sorted(series.items()):
        lived = points[-1][0] - points[0][0]
        if len(points) < 10 or lived < LIVED_SHARE * (end - start):
            continue
        fifth = max(2, len(points) // 5)
        early = statistics.median(k for _, k in points[:fifth])
        late = statistics.median(k for _, k in points[-fifth:])
        grew = late - early > max(GROWTH_KIB, GROWTH_RATIO * early)
        rows.append({"role": role, "pid": pid, "early_mib": round(early / 1024, 1),
                     "late_mib": round(late / 1024, 1), "peak_mib": round(
                         max(k for _, k in points) / 1024, 1), "grew": grew})
        if grew and role != "mariadb":  # InnoDB's buffer pool fills by design
            ledger.problems.append(f"memory of {role} {pid} grew from {early / 1024:.0f} to "
                                   f"{late / 1024:.0f} MiB")
    ledger.figures["memory"] = rows
