"""``bulksim verify``: run a provider's contract suite against any base URL.

Two parts, each reported as JUnit test cases and as a readable summary:

- conformance: schemathesis calls every operation of the provider's spec (the spec's own
  examples, then generated cases) and checks status codes, content types, headers and
  bodies against the spec;
- lifecycle: the provider's documented flow (authenticate → submit → poll → results, plus
  its documented errors), each response validated against the spec and each step checked
  against the documented behaviour (``lifecycle`` in the provider's contract suite).

Against a bulksim, time is moved through ``/_sim/clock/advance``; against a real provider
the lifecycle waits for real, up to ``timeout`` seconds. Operations marked
``x-bulksim-only`` in a spec (the simulator's stand-ins, such as Deepvue's output file
host) are only called on a bulksim.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from contracts.registry import record_of, spec_of, suite_of
from contracts.validate import SpecValidator
from simulator import Provider

__all__ = ["Case", "Drift", "Report", "Target", "Unverifiable", "open_target", "verify"]


class Drift(AssertionError):
    """The target departed from the spec or the documented behaviour."""


class Unverifiable(ValueError):
    """The target could not be checked at all (unreachable, credentials refused, wrong base
    URL): nothing is known about drift. The message is one line saying what to fix."""


@dataclass
class Target:
    """A provider's base URL with what a lifecycle needs: credentials, spec, time."""

    provider: str
    base_url: str
    credentials: Mapping[str, Any]
    http: httpx.Client
    validator: SpecValidator
    simulator_origin: str | None = None
    timeout: float = 900.0
    steps: list[str] = field(default_factory=list)

    @property
    def is_bulksim(self) -> bool:
        return self.simulator_origin is not None

    def call(self, step: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request and fail with :class:`Drift` if the answer breaks the spec."""
        self.steps.append(step)
        response = self.http.request(method, path, **kwargs)
        base_path = httpx.URL(self.base_url).path
        problems = self.validator.response_violations(response.request, response, base_path)
        if problems:
            raise Drift(f"{step}: {method} {path} → {response.status_code}: " + "; ".join(problems))
        return response

    def check_response(self, answer: Any) -> None:
        """Fail with :class:`Drift` if a schemathesis JSON response breaks the spec, naming
        the call, the status and each field at fault (as :meth:`call` does). Other media
        types are left to schemathesis's own checks."""
        media = answer.headers.get("content-type", [""])[0].split(";")[0].strip()
        if media != "application/json" and not media.endswith("+json"):
            return
        sent = answer.request
        request = httpx.Request(sent.method, sent.url, headers=dict(sent.headers))
        response = httpx.Response(
            answer.status_code,
            headers=[(k, v) for k, values in answer.headers.items() for v in values],
            content=answer.content,
            request=request,
        )
        base_path = httpx.URL(self.base_url).path
        problems = self.validator.response_violations(request, response, base_path)
        if problems:
            path = request.url.path.removeprefix(base_path.rstrip("/")) or "/"
            status = response.status_code
            raise Drift(f"{request.method} {path} → {status}: " + "; ".join(problems))

    def expect(self, step: str, condition: bool, message: str) -> None:
        """Fail with :class:`Drift` unless the documented behaviour holds."""
        if not condition:
            raise Drift(f"{step}: {message}")

    def wait(self, seconds: float) -> None:
        """Let time pass: the simulator's clock on a bulksim, real time elsewhere."""
        if self.simulator_origin is not None:
            httpx.post(f"{self.simulator_origin}/_sim/clock/advance", json={"seconds": seconds})
        else:
            time.sleep(seconds)


@dataclass
class Case:
    """One reported check."""

    group: str
    name: str
    seconds: float
    failure: str | None = None


@dataclass
class Report:
    provider: str
    base_url: str
    cases: list[Case] = field(default_factory=list)

    @property
    def drifted(self) -> list[Case]:
        return [c for c in self.cases if c.failure is not None]

    def summary(self) -> str:
        lines = [f"bulksim verify {self.provider} against {self.base_url}"]
        for case in self.cases:
            mark = "FAIL" if case.failure else "ok  "
            lines.append(f"  {mark} {case.group}: {case.name}")
            if case.failure:
                lines += [f"         {line}" for line in case.failure.strip().splitlines()[:12]]
        if self.drifted:
            lines.append(f"drift: {len(self.drifted)} of {len(self.cases)} checks failed")
        else:
            lines.append(f"no drift: {len(self.cases)} checks passed")
        return "\n".join(lines)

    def junit_xml(self) -> bytes:
        suite = ET.Element(
            "testsuite",
            name=f"bulksim verify {self.provider}",
            tests=str(len(self.cases)),
            failures=str(len(self.drifted)),
            errors="0",
            time=f"{sum(c.seconds for c in self.cases):.3f}",
        )
        for case in self.cases:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=f"{self.provider}.{case.group}",
                name=case.name,
                time=f"{case.seconds:.3f}",
            )
            if case.failure:
                failure = ET.SubElement(
                    element, "failure", message=case.failure.splitlines()[0][:500]
                )
                failure.text = case.failure
        root = ET.Element("testsuites")
        root.append(suite)
        document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return document


def credentials_for(
    record: str | Provider,
    given: Mapping[str, str],
    environ: Mapping[str, str],
    simulator_origin: str | None,
) -> dict[str, Any]:
    """Credentials from ``--credential`` first, then ``<PROVIDER>_<KEY>`` variables, then a
    bulksim's own ``/_sim/providers``."""
    provider = record_of(record).name
    suite = suite_of(record)
    keys: tuple[str, ...] = getattr(suite, "CREDENTIAL_KEYS", ())
    found: dict[str, Any] = {}
    if simulator_origin is not None:
        listing = httpx.get(f"{simulator_origin}/_sim/providers", timeout=30).json()["providers"]
        found.update(next(p["credentials"] for p in listing if p["name"] == provider))
    for key in keys:
        variable = f"{provider.upper()}_{key.upper()}"
        if variable in environ:
            found[key] = environ[variable]
    found.update(given)
    missing = [k for k in keys if k not in found]
    if missing:
        names = ", ".join(f"{provider.upper()}_{k.upper()}" for k in missing)
        raise Unverifiable(f"credentials missing: give --credential KEY=VALUE or set {names}")
    return found


def find_simulator(base_url: str, provider: str) -> str | None:
    """The origin of the bulksim serving ``base_url``, or None when it is not one.

    Raises :class:`Unverifiable` when nothing answers there at all.
    """
    url = httpx.URL(base_url)
    origin = f"{url.scheme}://{url.netloc.decode()}"
    try:
        response = httpx.get(f"{origin}/_sim/health", timeout=10)
    except httpx.TransportError as exc:
        raise Unverifiable(f"cannot reach {base_url}: {_reason(exc)}") from None
    try:
        served = response.json().get("providers", []) if response.status_code == 200 else []
    except (ValueError, AttributeError):
        return None
    if provider not in served:
        return None
    _check_base_path(base_url, provider, origin, served)
    return origin


def _check_base_path(base_url: str, provider: str, origin: str, served: list[str]) -> None:
    """On a bulksim, ``base_url`` must be where it serves ``provider``."""
    listing = httpx.get(f"{origin}/_sim/providers", timeout=30).json()["providers"]
    entry = next(p for p in listing if p["name"] == provider)
    path = httpx.URL(base_url).path.rstrip("/")
    if path == entry["base_path"].rstrip("/") or (not path and served == [provider]):
        return
    raise Unverifiable(
        f"{base_url} is not {provider}'s base URL on this bulksim: use {origin}{entry['base_path']}"
    )


def _reason(exc: httpx.TransportError) -> str:
    """Why a connection failed, in a few words."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(cause):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def authenticate_target(target: Target, suite: Any) -> dict[str, str]:
    """The suite's auth headers, after one call showing the base URL and credentials work.

    Raises :class:`Unverifiable` when the target refuses the credentials (401, 403), has no
    such path (404: the base URL lacks the provider's prefix) or cannot be reached. Any other
    surprise is left for the checks to report as drift.
    """
    probe = getattr(suite, "probe", None)
    try:
        headers: dict[str, str] = suite.auth_headers(target.http, target.credentials)
        if probe is not None:
            probe(target.http, headers).raise_for_status()
    except httpx.TransportError as exc:
        raise Unverifiable(f"cannot reach {target.base_url}: {_reason(exc)}") from None
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        call = f"{exc.request.method} {exc.request.url} answered {status}"
        if status in (401, 403):
            raise Unverifiable(
                f"{target.provider} refused the credentials: {call}; check --credential "
                f"or the {target.provider.upper()}_* variables"
            ) from None
        if status == 404:
            raise Unverifiable(
                f"{call}: is {target.base_url} {target.provider}'s base URL? "
                f"(on a bulksim it ends with /{target.provider})"
            ) from None
        return {}
    except (KeyError, ValueError, TypeError):
        return {}
    return headers


def verify(
    record: str | Provider,
    base_url: str,
    *,
    credentials: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    max_examples: int = 10,
    timeout: float = 900.0,
) -> Report:
    """Run the provider's contract suite against ``base_url``; the report says what drifted.

    ``record``: the provider, by name among bulksim's own or as its record; its spec and
    its suite are the ones the record names.
    """
    base_url = base_url.rstrip("/")
    provider = record_of(record).name
    document = spec_of(record)
    origin = find_simulator(base_url, provider)
    creds = credentials_for(record, credentials or {}, environ or os.environ, origin)
    suite: Any = suite_of(record)
    report = Report(provider, base_url)
    with open_target(record, base_url, creds, origin, timeout) as target:
        headers = authenticate_target(target, suite)
        _conformance(report, target, document, headers, max_examples)
        _run(report, "lifecycle", "documented flow", lambda: suite.lifecycle(target))
    return report


@contextmanager
def open_target(
    record: str | Provider,
    base_url: str,
    credentials: Mapping[str, Any],
    simulator_origin: str | None = None,
    timeout: float = 900.0,
) -> Iterator[Target]:
    """A :class:`Target` on ``base_url``, its HTTP client closed on exit.

    ``simulator_origin`` is the bulksim's origin when the target is one (time then moves
    through its control plane), ``None`` for a real provider.
    """
    provider = record_of(record).name
    validator = SpecValidator(spec_of(record))
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=60) as http:
        yield Target(
            provider, base_url.rstrip("/"), credentials, http, validator, simulator_origin, timeout
        )


def _run(report: Report, group: str, name: str, check: Callable[[], object]) -> None:
    started = time.perf_counter()
    failure = None
    try:
        check()
    except Drift as exc:
        failure = str(exc)
    except Exception as exc:  # a crash while checking is reported, never hidden
        failure = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    report.cases.append(Case(group, name, time.perf_counter() - started, failure))


def _conformance(
    report: Report,
    target: Target,
    document: dict[str, Any],
    headers: Mapping[str, str],
    max_examples: int,
) -> None:
    import hypothesis
    import schemathesis
    from hypothesis import given

    if not target.is_bulksim:
        document = _without_bulksim_only(document)
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=target.base_url)
    authenticate(schema, headers)
    excluded = [schemathesis.checks.positive_data_acceptance]
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        phases = [*schema.get_strategies_from_examples(operation), operation.as_strategy()]

        def run(phases: list[Any] = phases) -> None:
            for strategy in phases:

                @given(case=strategy)
                @hypothesis.settings(
                    max_examples=max_examples, deadline=None, database=None, derandomize=True
                )
                def check(case: Any) -> None:
                    response = case.call()
                    target.check_response(response)
                    case.validate_response(response, excluded_checks=excluded)

                try:
                    check()
                except Drift:
                    raise
                except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its findings
                    drifts = _drifts_in(exc)
                    raise Drift("\n".join(drifts) if drifts else str(exc)) from None

        _run(report, "conformance", operation.label, run)


def _drifts_in(exc: BaseException) -> list[str]:
    """The :class:`Drift` messages inside a (possibly nested) exception group."""
    if isinstance(exc, Drift):
        return [str(exc)]
    if isinstance(exc, BaseExceptionGroup):
        return [found for inner in exc.exceptions for found in _drifts_in(inner)]
    return []


def authenticate(schema: Any, headers: Mapping[str, str]) -> None:
    """Put working credentials on every generated case, over whatever was generated for them."""

    @schema.auth()
    class Credentials:
        def get(self, case: Any, ctx: Any) -> Mapping[str, str]:
            return headers

        def set(self, case: Any, data: Mapping[str, str], ctx: Any) -> None:
            case.headers = {**(case.headers or {}), **data}


def _without_bulksim_only(document: dict[str, Any]) -> dict[str, Any]:
    paths = {
        path: {
            m: op
            for m, op in item.items()
            if not (isinstance(op, dict) and op.get("x-bulksim-only"))
        }
        for path, item in document["paths"].items()
    }
    return {**document, "paths": {p: item for p, item in paths.items() if item}}
