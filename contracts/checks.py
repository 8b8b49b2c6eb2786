"""Client checks over recorded traffic: the spec, and what only a stateful simulator sees.

Each provider's suite (``contracts.suites.<name>``) describes its behaviour once: which
operation is a status poll and when a status is terminal, which operation pages and how,
which answer means "your token expired" or "that one-shot resource was already used". The
checks below read the journal with that description and name each mistake they find:

============================  ==========================================================
check                          the client...
============================  ==========================================================
``spec``                       sent a request the provider's spec does not allow
``hot-poll``                   polled one resource faster than ``min_poll_interval``
``poll-after-terminal``        kept polling after the resource reached a terminal status
``stopped-polling``            stopped polling while the resource was still in progress
``stopped-paging``             stopped paging while the provider said more pages exist
``expired-token``              sent a token the provider had already expired
``reused-one-shot``            used a one-shot resource (a fileId) a second time
``ignored-retry-after``        called again sooner than a 429's Retry-After allowed
``cut-off-body``               (not the client's mistake) got an answer the checks above
                               need to read whole, but the journal kept only its start
                               (``journal_body_bytes``): raise the cap rather than trust
                               a pass
============================  ==========================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Behaviour",
    "ClientNotConformant",
    "Finding",
    "Paging",
    "Polling",
    "check_deliveries",
    "check_entries",
    "cut_off",
]

Entry = Mapping[str, Any]
Key = Callable[[Entry], str | None]
Predicate = Callable[[Entry], bool]


def never(entry: Entry) -> bool:
    return False


@dataclass(frozen=True)
class Polling:
    """A status poll: the resource it is about, and whether its answer is terminal."""

    operation: str
    key: Key
    terminal: Predicate
    answered: Predicate = lambda e: 200 <= e["response"]["status"] < 300


@dataclass(frozen=True)
class Paging:
    """A paged listing: the resource, this page's position, whether more follow."""

    operation: str
    key: Key
    position: Callable[[Entry], int]
    has_more: Predicate
    next_position: Callable[[Entry], int]


@dataclass(frozen=True)
class Behaviour:
    """What the checks need to know of one provider."""

    polling: Sequence[Polling] = ()
    paging: Sequence[Paging] = ()
    expired_token: Predicate = never
    reused_one_shot: Predicate = never


@dataclass(frozen=True)
class Finding:
    """One mistake, with the journal entry (sequence number) that shows it."""

    check: str
    message: str
    seq: int
    request: str = ""

    def __str__(self) -> str:
        where = f"  [{self.request}, journal #{self.seq}]" if self.request else ""
        return f"{self.check}: {self.message}{where}"


def counted(count: int, noun: str) -> str:
    """``1 finding``, ``2 findings``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class ClientNotConformant(AssertionError):
    """The client broke the spec or a behaviour rule; ``findings`` lists each instance."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        lines = "\n".join(f"- {f}" for f in self.findings)
        count = counted(len(self.findings), "finding")
        super().__init__(f"the client is not conformant ({count}):\n{lines}")


def describe_request(entry: Entry) -> str:
    query = f"?{entry['query']}" if entry.get("query") else ""
    status = entry["response"]["status"]
    answer = "dropped" if entry.get("dropped") else "no answer" if status is None else status
    return f"{entry['method']} {entry['path']}{query} → {answer}"


CUT_MARK = "…"  # how the journal ends a body it kept only the start of


def cut_off(entry: Entry) -> bool:
    """Whether the journal kept only the start of this entry's response body."""
    response = entry["response"]
    body = response.get("body")
    if not isinstance(body, str) or not body.endswith(CUT_MARK):
        return False
    declared = response.get("headers", {}).get("content-length", "")
    kept = len(body.encode()) - len(CUT_MARK.encode())
    return not declared.isdigit() or int(declared) > kept


def check_entries(
    entries: Sequence[Entry],
    behaviours: Mapping[str, Behaviour],
    *,
    min_poll_interval: float = 1.0,
    skip: Iterable[str] = (),
) -> list[Finding]:
    """Every finding in ``entries`` (one simulator's journal, oldest first)."""
    skipped = set(skip)
    findings: list[Finding] = []
    for provider, behaviour in behaviours.items():
        mine = [e for e in entries if e["provider"] == provider]
        for check in (_spec, _retry_after, _cut_off):
            findings += check(mine, behaviour)
        # The rules about answers read only requests that got one (not a dropped connection).
        answered = [e for e in mine if e["response"]["status"] is not None]
        for check in (_expired, _reused):
            findings += check(answered, behaviour)
        for polling in behaviour.polling:
            findings += _polls(answered, polling, min_poll_interval)
        for paging in behaviour.paging:
            findings += _pages(answered, paging)
    findings = [f for f in findings if f.check not in skipped]
    return sorted(findings, key=lambda f: (f.seq, f.check))


def _finding(check: str, message: str, entry: Entry) -> Finding:
    return Finding(check, message, int(entry["seq"]), describe_request(entry))


def _spec(entries: Sequence[Entry], behaviour: Behaviour) -> list[Finding]:
    return [
        _finding("spec", f"request does not match the spec: {violation}", e)
        for e in entries
        for violation in e.get("violations", [])
    ]


def _expired(entries: Sequence[Entry], behaviour: Behaviour) -> list[Finding]:
    return [
        _finding("expired-token", "sent an expired token; refresh it before it expires", e)
        for e in entries
        if behaviour.expired_token(e)
    ]


def _reused(entries: Sequence[Entry], behaviour: Behaviour) -> list[Finding]:
    return [
        _finding(
            "reused-one-shot", "used a one-shot resource (a fileId) that was already consumed", e
        )
        for e in entries
        if behaviour.reused_one_shot(e)
    ]


def _retry_after(entries: Sequence[Entry], behaviour: Behaviour) -> list[Finding]:
    findings = []
    for index, entry in enumerate(entries):
        response = entry["response"]
        wait = response.get("headers", {}).get("retry-after", "")
        if response["status"] != 429 or not wait.strip().isdigit() or index + 1 >= len(entries):
            continue
        following = entries[index + 1]
        waited = (following["epoch_ms"] - entry["epoch_ms"]) / 1000
        if waited < int(wait):
            findings.append(
                _finding(
                    "ignored-retry-after",
                    f"called again {waited:g}s after a 429 whose Retry-After asked for {wait}s",
                    following,
                )
            )
    return findings


def _cut_off(entries: Sequence[Entry], behaviour: Behaviour) -> list[Finding]:
    """An answer a behaviour check reads, cut off in the journal: that check cannot judge it."""
    readers: dict[str, list[str]] = {}
    for polling in behaviour.polling:
        readers.setdefault(polling.operation, []).extend(
            ["poll-after-terminal", "stopped-polling", "hot-poll"]
        )
    for paging in behaviour.paging:
        readers.setdefault(paging.operation, []).append("stopped-paging")
    errors = [
        name
        for name, predicate in (
            ("expired-token", behaviour.expired_token),
            ("reused-one-shot", behaviour.reused_one_shot),
        )
        if predicate is not never
    ]
    findings = []
    for entry in entries:
        checks = list(readers.get(entry["operation"], []))
        status = entry["response"]["status"]
        if status is not None and status >= 400:
            checks += errors
        if checks and cut_off(entry):
            size = entry["response"].get("headers", {}).get("content-length", "?")
            findings.append(
                _finding(
                    "cut-off-body",
                    f"the journal kept only the start of this {size}-byte answer, so "
                    f"{', '.join(dict.fromkeys(checks))} cannot judge it; raise the settings' "
                    "journal_body_bytes (contracts.harness.default_settings() keeps 128 KiB)",
                    entry,
                )
            )
    return findings


def _polls(entries: Sequence[Entry], polling: Polling, min_interval: float) -> list[Finding]:
    findings = []
    by_key: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry["operation"] == polling.operation and polling.answered(entry):
            key = polling.key(entry)
            if key is not None:
                by_key.setdefault(key, []).append(entry)
    for key, polls in by_key.items():
        hot = [
            later
            for earlier, later in itertools.pairwise(polls)
            if (later["epoch_ms"] - earlier["epoch_ms"]) / 1000 < min_interval
            and not polling.terminal(earlier)
        ]
        if hot:
            findings.append(
                _finding(
                    "hot-poll",
                    f"polled {key} {len(hot) + 1} times less than {min_interval:g}s apart "
                    "(a hot loop: wait between polls, with backoff)",
                    hot[0],
                )
            )
        done_at = next((i for i, e in enumerate(polls) if polling.terminal(e)), None)
        if done_at is not None and done_at + 1 < len(polls):
            findings.append(
                _finding(
                    "poll-after-terminal",
                    f"kept polling {key} after it reached a terminal status",
                    polls[done_at + 1],
                )
            )
        if not polling.terminal(polls[-1]):
            findings.append(
                _finding(
                    "stopped-polling",
                    f"stopped polling {key} while it was still in progress "
                    "(an in-progress answer is not a result)",
                    polls[-1],
                )
            )
    return findings


def _pages(entries: Sequence[Entry], paging: Paging) -> list[Finding]:
    findings = []
    fetched: dict[str, dict[int, Entry]] = {}
    for entry in entries:
        if entry["operation"] == paging.operation and 200 <= entry["response"]["status"] < 300:
            key = paging.key(entry)
            if key is not None:
                fetched.setdefault(key, {})[paging.position(entry)] = entry
    for key, pages in fetched.items():
        for entry in pages.values():
            if paging.has_more(entry) and paging.next_position(entry) not in pages:
                findings.append(
                    _finding(
                        "stopped-paging",
                        f"stopped paging {key} at {paging.position(entry)} while the answer said "
                        "more follow (has_next/hasMore was true)",
                        entry,
                    )
                )
    return findings


# -- The client's webhook receiver ---------------------------------------------------------
#
# ============================  ==========================================================
# check                          the receiver...
# ============================  ==========================================================
# ``accepted-bad-signature``     answered 2xx to a delivery signed with the wrong secret
#                                (a ``webhook_bad_signature`` fault)
# ``accepted-stale-timestamp``   answered 2xx to a genuine signature over an old timestamp
#                                (a ``webhook_stale_timestamp`` fault)
# ``processed-duplicate``        acted on one event id more than once (a retry, a
#                                ``webhook_duplicate`` or ``webhook_slow`` fault); judged
#                                from what the receiver reports it acted on
# ``slow-ack``                   answered after the delivery timeout, or never, so that the
#                                provider counts the delivery as failed and sends it again
# ``lost-out-of-order``          given an event after a newer one, ended without it: it
#                                acknowledged the event and never acted on it, or its state
#                                for a subject came from an older event than one it acted on
# ============================  ==========================================================
#
# What the receiver did is what only it knows, so it says: ``acted_on`` lists the event ids
# it acted on (an id, or ``(id, subject)`` naming what the event was about: a batch id, say),
# and ``state`` maps each subject it keeps to the id of the event its state came from.
# Events are ordered as the provider made them: by the instant their first attempt fell due.

RECEIVER_CHECKS = (
    "accepted-bad-signature",
    "accepted-stale-timestamp",
    "processed-duplicate",
    "slow-ack",
    "lost-out-of-order",
)
Acted = str | tuple[str, str]


def describe_attempt(attempt: Entry) -> str:
    status = attempt.get("status")
    answer = status if status is not None else attempt.get("outcome", "no answer")
    return (
        f"POST {attempt['target']} {attempt['type']} {attempt['event']} "
        f"attempt {attempt['attempt']} → {answer}"
    )


def check_deliveries(
    attempts: Sequence[Entry],
    acted_on: Sequence[Acted] | None = None,
    *,
    state: Mapping[str, str] | None = None,
    skip: Iterable[str] = (),
) -> list[Finding]:
    """Every receiver finding in ``attempts`` (``GET /_sim/webhooks``, oldest first).

    ``acted_on`` is every event id the receiver acted on, once per time it acted (its own
    record: the rows it wrote, the jobs it queued), each an id or ``(id, subject)``; without
    it ``processed-duplicate`` and ``lost-out-of-order`` are not judged. ``state`` maps each
    subject the receiver keeps to the id of the event its current state came from. A
    finding's ``seq`` is the attempt's position in ``attempts``, from 1.
    """
    skipped = set(skip)
    findings: list[Finding] = []
    rejected_as = {
        "webhook_bad_signature": (
            "accepted-bad-signature",
            "accepted a delivery whose signature does not verify; answer 4xx and ignore it",
        ),
        "webhook_stale_timestamp": (
            "accepted-stale-timestamp",
            "accepted a signature whose timestamp is long past (a replay); check t against "
            "your clock and answer 4xx beyond a few minutes",
        ),
    }
    last: dict[str, tuple[int, Entry]] = {}
    for seq, attempt in enumerate(attempts, start=1):
        last[str(attempt["event"])] = (seq, attempt)
        status = attempt.get("status")
        accepted = isinstance(status, int) and 200 <= status < 300
        fault = _fault_of(attempt)
        if fault in rejected_as and accepted:
            check, message = rejected_as[fault]
            findings.append(Finding(check, message, seq, describe_attempt(attempt)))
        if attempt.get("timed_out") and not fault:
            findings.append(
                Finding(
                    "slow-ack",
                    "answered after the delivery timeout (or never): acknowledge at once and do "
                    "the work afterwards, or the event is sent again",
                    seq,
                    describe_attempt(attempt),
                )
            )
    if acted_on is not None:
        ids = [item if isinstance(item, str) else item[0] for item in acted_on]
        counts: dict[str, int] = {}
        for event_id in ids:
            counts[event_id] = counts.get(event_id, 0) + 1
        for event_id, count in counts.items():
            if count > 1:
                seq, where = 0, ""
                if event_id in last:
                    seq, attempt = last[event_id]
                    where = describe_attempt(attempt)
                findings.append(
                    Finding(
                        "processed-duplicate",
                        f"acted on event {event_id} {count} times; a delivery can come more "
                        "than once: keep the ids you have handled and skip a repeat",
                        seq,
                        where,
                    )
                )
        findings += _lost_out_of_order(attempts, acted_on, state or {})
    findings = [f for f in findings if f.check not in skipped]
    return sorted(findings, key=lambda f: (f.seq, f.check))


def _fault_of(attempt: Entry) -> str:
    return str(attempt.get("fault") or "").partition(":")[0]


def _lost_out_of_order(
    attempts: Sequence[Entry], acted_on: Sequence[Acted], state: Mapping[str, str]
) -> list[Finding]:
    """Events that reached the receiver after a newer one and are missing from where it ended.

    An event's place in the provider's order is the instant its first attempt fell due (a
    held-back or late attempt is recorded at that instant too); it came out of order when a
    newer event had reached the receiver before it did.
    """
    made: dict[str, str] = {}  # event id -> when the provider made it (ISO, sorts as time)
    for attempt in attempts:
        event_id, due = str(attempt["event"]), str(attempt["due"])
        made[event_id] = min(made.get(event_id, due), due)
    newest_seen = ""  # the newest event that had reached the receiver so far
    late_arrival: dict[str, tuple[int, Entry, str]] = {}  # event -> (seq, attempt, newer one)
    acknowledged: set[str] = set()
    seen_from: dict[str, str] = {}  # made-instant -> an event made then
    for seq, attempt in enumerate(attempts, start=1):
        status = attempt.get("status")
        if status is None:
            continue
        event_id = str(attempt["event"])
        if made[event_id] < newest_seen and event_id not in late_arrival:
            late_arrival[event_id] = (seq, attempt, seen_from[newest_seen])
        if made[event_id] >= newest_seen:
            newest_seen = made[event_id]
            seen_from[newest_seen] = event_id
        genuine = _fault_of(attempt) not in ("webhook_bad_signature", "webhook_stale_timestamp")
        if isinstance(status, int) and 200 <= status < 300 and genuine:
            acknowledged.add(event_id)
    acted = {item if isinstance(item, str) else item[0] for item in acted_on}
    findings = []
    for event_id, (seq, attempt, newer) in late_arrival.items():
        if event_id in acknowledged and event_id not in acted:
            findings.append(
                Finding(
                    "lost-out-of-order",
                    f"acknowledged event {event_id}, which came after the newer {newer}, and "
                    "never acted on it: events can arrive in any order; order them by their "
                    "own time (createdAt), not by arrival, and never drop one for being older",
                    seq,
                    describe_attempt(attempt),
                )
            )
    about: dict[str, list[str]] = {}
    for item in acted_on:
        if not isinstance(item, str):
            about.setdefault(item[1], []).append(item[0])
    where = {str(a["event"]): (seq, a) for seq, a in enumerate(attempts, start=1)}
    for subject, kept in state.items():
        if kept not in made:
            continue
        newer_events = [e for e in about.get(subject, []) if made.get(e, "") > made[kept]]
        if newer_events:
            newest = max(newer_events, key=lambda e: made[e])
            seq, attempt = where.get(kept, (0, {}))
            findings.append(
                Finding(
                    "lost-out-of-order",
                    f"ended with {subject} as event {kept} left it, though it also acted on the "
                    f"newer {newest}: an older event that arrives late must not overwrite a "
                    "newer one (compare their createdAt before applying)",
                    seq,
                    describe_attempt(attempt) if attempt else "",
                )
            )
    return findings
