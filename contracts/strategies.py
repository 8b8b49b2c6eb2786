"""Hypothesis strategies over provider behaviours, for fuzzing an API client.

A :class:`Scenario` is one way a provider may behave: how long its batches take, when tokens
expire, what the input items are (some of them magic values that fail), and which faults
strike which call (documented errors, 429 with Retry-After, 5xx, dropped connections,
latency, cut-off bodies). A test draws one, applies it through the control plane, runs the
client and asserts its property; Hypothesis shrinks a failure to the smallest scenario and
prints it as code that rebuilds it. The whole fuzz test is::

    from contracts.strategies import fuzz

    @fuzz("deepvue")
    def test_my_client_survives(bulksim_app, scenario):
        scenario.apply(bulksim_app)
        rows = bulksim_app.run_client(my_client.verify, scenario.input())
        assert len(rows) == len(scenario.items)

Each provider describes its space of behaviours once, as ``SPACE`` in its contract suite
(the module its record names: ``contracts.suites.<provider>``).

A client's webhook receiver is fuzzed the same way: a :class:`DeliverySchedule` is a drawn
sequence of events the provider makes, delivery faults (duplicates, reorderings, late or
dropped events, bad signatures, stale timestamps, a slow receiver), clock advances and the
client's own polls; the provider says how an event is made as ``WEBHOOKS`` in its suite::

    from contracts.strategies import fuzz_receiver

    @fuzz_receiver("check")
    def test_my_receiver_survives(bulksim_app, schedule):
        receiver = MyReceiver()
        origin = bulksim_app.webhook_receiver(receiver.app)
        schedule.run(bulksim_app, f"{origin}/hooks")
        bulksim_app.assert_receiver_conformant(acted_on=receiver.acted)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from contracts.harness import Simulator
from contracts.registry import record_of, suite_of
from simulator import WEBHOOK_FAULT_KINDS, Provider

__all__ = [
    "DeliverySchedule",
    "Scenario",
    "ScenarioSpace",
    "WebhookSpace",
    "delivery_schedules",
    "faults",
    "fuzz",
    "fuzz_receiver",
    "scenarios",
]

TRANSIENT_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True)
class ScenarioSpace:
    """What can vary for one provider.

    ``options``: provider options and the strategy of each (durations, token lifetimes).
    ``items``: the client's input items, some magic values among them.
    ``operations``: the operations faults may strike.
    ``transient_errors``: documented errors a correct client retries.
    ``render``: turns the items into what the client takes (a CSV, a JSON list, ...).
    ``render_with_credentials``: instead of ``render``, for items that name something of the
    test account (Passcreator's template id): it also takes the provider's credentials as
    ``/_sim/providers`` lists them, which :meth:`Scenario.apply` records.
    """

    options: Mapping[str, st.SearchStrategy[Any]]
    items: st.SearchStrategy[list[Any]]
    operations: Sequence[str]
    transient_errors: Sequence[str] = ()
    render: Callable[[Sequence[Any]], Any] = list
    render_with_credentials: Callable[[Sequence[Any], Mapping[str, Any]], Any] | None = None


@dataclass(frozen=True)
class Scenario:
    """One drawn behaviour of a provider; ``apply`` it to a simulator before the client runs."""

    provider: str
    options: dict[str, Any] = field(default_factory=dict)
    items: tuple[Any, ...] = ()
    faults: tuple[dict[str, Any], ...] = ()
    # The provider's test credentials, from the simulator the scenario was last applied to.
    credentials: dict[str, Any] = field(init=False, default_factory=dict, repr=False, compare=False)
    # The provider's record when it was given as one (a provider bulksim does not list).
    record: Provider | None = field(default=None, kw_only=True, repr=False, compare=False)

    def apply(self, sim: Simulator) -> None:
        """Fresh state, clock at its start, then this scenario's options and faults.

        Inside a Hypothesis test, a failing example is printed with the scenario and the
        control-plane calls that put a served simulator into it.
        """
        if currently_in_test_context():
            note(f"{self!r}\nto replay against a served bulksim:\n{self.replay()}")
        self.credentials.clear()
        self.credentials.update(sim.providers().get(self.provider, {}).get("credentials", {}))
        sim.reset()
        start = sim.start
        if start is not None:
            sim.clock.set(start)
        if self.options:
            sim.options(self.provider, **self.options)
        for fault in self.faults:
            sim.faults.schedule(self.provider, **fault)

    def input(self) -> Any:
        """The items in the form the provider's client takes (e.g. CSV bytes for Deepvue).

        Items that name something of the test account (Passcreator's template id) take it
        from the credentials recorded by :meth:`apply`: apply the scenario first.
        """
        space = space_of(self.record or self.provider)
        if space.render_with_credentials is None:
            return space.render(self.items)
        if not self.credentials:
            raise RuntimeError(
                f"{self.provider} items name its test account: apply the scenario to a "
                "simulator before asking for its input"
            )
        return space.render_with_credentials(self.items, self.credentials)

    def replay(self, origin: str = "http://127.0.0.1:8700") -> str:
        """Shell commands that put a served simulator into this scenario."""
        post = f"curl -s -X POST {origin}/_sim"
        json_type = "-H 'Content-Type: application/json'"
        lines = [f"{post}/reset"]
        if self.options:
            body = json.dumps({"provider": self.provider, "options": self.options})
            lines.append(f"{post}/options {json_type} -d '{body}'")
        for fault in self.faults:
            body = json.dumps({"provider": self.provider, **fault})
            lines.append(f"{post}/faults {json_type} -d '{body}'")
        return "\n".join(lines)


def space_of(provider: str | Provider) -> ScenarioSpace:
    """The ``SPACE`` of the provider's contract suite."""
    space: ScenarioSpace | None = getattr(suite_of(provider), "SPACE", None)
    if space is None:
        module = record_of(provider).suite_module
        raise LookupError(f"{module} describes no SPACE of behaviours")
    return space


MAX_HITS_PER_OPERATION = 3


def faults(
    space: ScenarioSpace, max_faults: int = 4
) -> st.SearchStrategy[tuple[dict[str, Any], ...]]:
    """Faults striking the provider's calls: which kind, which operation, how many times.

    At most ``MAX_HITS_PER_OPERATION`` faults strike any one operation in a row, so a client
    that tries each call four times (with backoff) survives every scenario; one that never
    retries does not.
    """
    operation = st.sampled_from(list(space.operations))
    count = st.integers(1, 3)
    kinds: list[st.SearchStrategy[dict[str, Any]]] = [
        st.fixed_dictionaries({"kind": st.just("rate_limit"), "retry_after": st.integers(0, 60)}),
        st.fixed_dictionaries(
            {"kind": st.just("status"), "status": st.sampled_from(TRANSIENT_STATUSES)}
        ),
        st.fixed_dictionaries({"kind": st.just("drop")}),
        st.fixed_dictionaries({"kind": st.just("drop_after")}),
        st.fixed_dictionaries({"kind": st.just("malformed")}),
        st.fixed_dictionaries({"kind": st.just("latency"), "latency_ms": st.integers(0, 10_000)}),
    ]
    if space.transient_errors:
        kinds.append(
            st.fixed_dictionaries(
                {"kind": st.just("error"), "error": st.sampled_from(list(space.transient_errors))}
            )
        )
    one = st.tuples(st.one_of(kinds), operation, count).map(
        lambda t: {**t[0], "operation": t[1], "count": t[2]}
    )
    return st.lists(one, max_size=max_faults).map(_cap_per_operation)


def _cap_per_operation(drawn: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    left: dict[str, int] = {}
    kept = []
    for fault in drawn:
        budget = left.setdefault(fault["operation"], MAX_HITS_PER_OPERATION)
        if budget > 0:
            count = min(fault["count"], budget)
            left[fault["operation"]] = budget - count
            kept.append({**fault, "count": count})
    return tuple(kept)


@st.composite
def _scenario(draw: st.DrawFn, provider: str | Provider, max_faults: int) -> Scenario:
    record = record_of(provider)
    space = space_of(record)
    chosen = draw(st.lists(st.sampled_from(sorted(space.options)), unique=True))
    options = {name: draw(space.options[name]) for name in sorted(chosen)}
    items = tuple(draw(space.items))
    drawn_faults = draw(faults(space, max_faults)) if max_faults else ()
    given = record if isinstance(provider, Provider) else None
    return Scenario(record.name, options, items, drawn_faults, record=given)


def scenarios(provider: str | Provider, *, max_faults: int = 4) -> st.SearchStrategy[Scenario]:
    """Scenarios for ``provider``; ``max_faults=0`` draws timing and inputs only."""
    return _scenario(provider, max_faults)


def fuzz(
    provider: str | Provider,
    *,
    max_examples: int = 50,
    max_faults: int = 4,
    phases: Sequence[Phase] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a test taking ``scenario`` (and fixtures) to run it over drawn scenarios.

    The simulator fixture is reused across examples, which is why ``Scenario.apply``
    resets it first; the health check that warns of that is switched off here. ``phases``
    passes on to Hypothesis (leaving out ``Phase.explain`` makes a failing run quicker).
    """

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        run = given(scenario=scenarios(provider, max_faults=max_faults))(test)
        return settings(
            max_examples=max_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            phases=phases if phases is not None else tuple(Phase),
        )(run)

    return decorate


# -- fuzzing a webhook receiver -------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSpace:
    """How a provider is made to send a webhook, for fuzzing a client's receiver.

    ``trigger(sim, target)`` makes one event to come to ``target`` (a batch whose webhook URL
    it is) and returns the resource's id; ``poll(sim, id)`` is the client's own poll of it;
    ``replay(origin, target, credentials)`` is the shell command that does what ``trigger``
    does against a served bulksim at ``origin``.
    """

    trigger: Callable[[Simulator, str], str]
    poll: Callable[[Simulator, str], object]
    replay: Callable[[str, str, Mapping[str, Any]], str]
    kinds: Sequence[str] = WEBHOOK_FAULT_KINDS


# After its steps a schedule lets the clock run this long, past every retry of the default
# schedule (5 s, 5 min, 30 min, 2 h) and every held-back or late event, so all is delivered.
SETTLE_SECONDS = 86_400


@dataclass(frozen=True)
class DeliverySchedule:
    """One drawn sequence of what happens around a client's webhook receiver.

    Each step is a dict: ``{"step": "event"}`` (the provider makes an event; the clock then
    moves one second, so events made one after another are a second apart), ``{"step":
    "fault", "kind": ..., "count": n}`` (a delivery fault for the next deliveries, with
    ``latency_ms`` for the kinds that take one), ``{"step": "advance", "seconds": s}`` and
    ``{"step": "poll"}`` (the client polls every resource made so far). :meth:`run` plays
    it; Hypothesis shrinks a failing one to its fewest steps and prints it and its replay.
    """

    provider: str
    steps: tuple[dict[str, Any], ...] = ()
    # The provider's record when it was given as one (a provider bulksim does not list).
    record: Provider | None = field(default=None, kw_only=True, repr=False, compare=False)

    def run(self, sim: Simulator, target: str) -> list[str]:
        """Fresh state, clock at its start, then the steps, then a day on the clock so that
        everything is delivered; the ids of the resources made.

        Inside a Hypothesis test, a failing example is printed with the schedule and the
        commands that replay it against a served simulator.
        """
        space = webhook_space_of(self.record or self.provider)
        if currently_in_test_context():
            credentials = sim.providers().get(self.provider, {}).get("credentials", {})
            note(
                f"{self!r}\nto replay against a served bulksim:\n{self.replay(target, credentials)}"
            )
        sim.reset()
        if sim.start is not None:
            sim.clock.set(sim.start)
        made: list[str] = []
        for step in self.steps:
            if step["step"] == "event":
                made.append(space.trigger(sim, target))
                sim.clock.advance(1)
            elif step["step"] == "fault":
                fields = {k: v for k, v in step.items() if k not in ("step", "kind")}
                sim.faults.schedule(self.provider, step["kind"], **fields)
            elif step["step"] == "advance":
                sim.clock.advance(step["seconds"])
            else:
                for resource in made:
                    space.poll(sim, resource)
        sim.clock.advance(SETTLE_SECONDS)
        return made

    def replay(
        self,
        target: str,
        credentials: Mapping[str, Any] | None = None,
        origin: str = "http://127.0.0.1:8700",
    ) -> str:
        """Shell commands that play this schedule against a served simulator at ``origin``
        (the client's polls are left out: they change nothing the receiver sees)."""
        space = webhook_space_of(self.record or self.provider)
        post = f"curl -s --fail-with-body -X POST {origin}/_sim"
        json_type = "-H 'Content-Type: application/json'"

        def advance(seconds: float) -> str:
            return f"{post}/clock/advance {json_type} -d '{json.dumps({'seconds': seconds})}'"

        lines = [f"{post}/reset"]
        placeholder = "http://receiver.placeholder.invalid/"
        mounted = httpx.URL(target).host.endswith(".receiver.invalid")
        if mounted:
            # Mounted in process: a served bulksim reaches the receiver at its own URL instead.
            lines.insert(0, "RECEIVER_URL=http://127.0.0.1:9000/hooks  # your receiver, served")
        for step in self.steps:
            if step["step"] == "event":
                line = space.replay(origin, placeholder if mounted else target, credentials or {})
                lines += [line.replace(placeholder, "'\"$RECEIVER_URL\"'"), advance(1)]
            elif step["step"] == "fault":
                fault = {k: v for k, v in step.items() if k != "step"}
                body = json.dumps({"provider": self.provider, **fault})
                lines.append(f"{post}/faults {json_type} -d '{body}'")
            elif step["step"] == "advance":
                lines.append(advance(step["seconds"]))
        lines.append(advance(SETTLE_SECONDS))
        return "\n".join(lines)


def webhook_space_of(provider: str | Provider) -> WebhookSpace:
    """The ``WEBHOOKS`` of the provider's contract suite."""
    space: WebhookSpace | None = getattr(suite_of(provider), "WEBHOOKS", None)
    if space is None:
        module = record_of(provider).suite_module
        raise LookupError(f"{module} describes no WEBHOOKS: it sends none bulksim can fuzz")
    return space


STALE_AFTER_S = 600  # a stale timestamp is older than this: twice the usual 5-minute tolerance


def _delivery_fault(kinds: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    seconds = {
        "webhook_out_of_order": st.integers(1, 7200),
        "webhook_late": st.integers(1, 7200),
        "webhook_stale_timestamp": st.integers(STALE_AFTER_S, 86_400),
    }

    def fault(kind: str) -> st.SearchStrategy[dict[str, Any]]:
        fields: dict[str, st.SearchStrategy[Any]] = {
            "step": st.just("fault"),
            "kind": st.just(kind),
            "count": st.integers(1, 2),
        }
        if kind in seconds:
            fields["latency_ms"] = seconds[kind].map(lambda s: s * 1000)
        return st.fixed_dictionaries(fields)

    return st.sampled_from(list(kinds)).flatmap(fault)


@st.composite
def _schedule(
    draw: st.DrawFn, provider: str | Provider, max_steps: int, max_events: int
) -> DeliverySchedule:
    record = record_of(provider)
    space = webhook_space_of(record)
    event = st.just({"step": "event"})
    step = st.one_of(
        event,
        _delivery_fault(space.kinds),
        st.fixed_dictionaries({"step": st.just("advance"), "seconds": st.integers(1, 3600)}),
        st.just({"step": "poll"}),
    )
    steps = draw(st.lists(step, min_size=1, max_size=max_steps))
    events = 0
    kept = []
    for one in steps:
        if one["step"] == "event":
            events += 1
            if events > max_events:
                continue
        kept.append(one)
    if events == 0:
        kept.append({"step": "event"})
    given = record if isinstance(provider, Provider) else None
    return DeliverySchedule(record.name, tuple(kept), record=given)


def delivery_schedules(
    provider: str | Provider, *, max_steps: int = 10, max_events: int = 4
) -> st.SearchStrategy[DeliverySchedule]:
    """Delivery schedules for ``provider``'s webhooks: at most ``max_steps`` steps, of which
    at most ``max_events`` make an event (and at least one does)."""
    return _schedule(provider, max_steps, max_events)


def fuzz_receiver(
    provider: str | Provider,
    *,
    max_examples: int = 50,
    max_steps: int = 10,
    max_events: int = 4,
    derandomize: bool = False,
    phases: Sequence[Phase] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a test taking ``schedule`` (and fixtures) to run it over drawn delivery
    schedules: the receiver's counterpart of :func:`fuzz`. ``derandomize=True`` draws the
    same examples on every run (a fixed seed)."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        drawn = delivery_schedules(provider, max_steps=max_steps, max_events=max_events)
        run = given(schedule=drawn)(test)
        return settings(
            max_examples=max_examples,
            deadline=None,
            derandomize=derandomize,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            phases=phases if phases is not None else tuple(Phase),
        )(run)

    return decorate
