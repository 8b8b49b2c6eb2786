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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from contracts.harness import Simulator
from contracts.registry import record_of, suite_of
from simulator import Provider

__all__ = ["Scenario", "ScenarioSpace", "faults", "fuzz", "scenarios"]

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
