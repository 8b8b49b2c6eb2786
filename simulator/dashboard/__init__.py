"""The dashboard at ``/_sim/ui``: the simulator's state as a page a person reads.

=============================  ==============================================================
``GET /_sim/ui``               the page, rendered on the server (filters ``provider``,
                               ``operation``; ``rows``: how many journal entries, newest first;
                               ``check=all``: check the rows shown against the spec first;
                               ``sandbox``: the sandbox shown, ``default`` when left out)
``GET /_sim/ui/live``          what the page's script polls: the sections again and the
                               journal rows after ``since`` (a sequence number), as HTML in
                               JSON; ``check=4,7``: those rows checked against the spec
``GET /_sim/ui/static/...``    the page's stylesheet and script
=============================  ==============================================================

A journal entry is checked against the provider's spec when first read, which costs about a
millisecond an entry (and, the first time in a process, building the spec's validator): the
page does not wait for it. It shows the rows not checked yet as such, with a link to the page
checked (``check=all``, for a browser without JavaScript), and its script has ``live`` check
them (``check=``, in a worker thread, off the event loop) and replaces them. ``live`` checks
the new rows it gives. An entry is checked once its answer is done, and keeps what it found.

Behaviour findings (a hot poll loop, a poll after a terminal status, a stopped paging...) are
judged by the harness's checks, which sit above the simulator: the app is handed them as a
``findings`` source (:class:`FindingsSource`; ``bulksim serve`` and the harness give one).
The page asks it about the rows it shows, newest ``rows`` only (a mistake that needs older
rows than those is not seen), and ``live`` asks again about the same window, so a row's
findings follow the rows that came after it. Without a source the page says the findings
are not available.

Everything is read on request from the simulator's state: nothing here runs on a provider's
request, so the page costs the providers nothing while nobody looks. The page changes nothing
itself; its buttons and forms call the control plane (``/_sim/clock/advance``,
``/_sim/faults``...) from the browser. Read-only, it works without JavaScript.

The page shows one sandbox (``?sandbox=<id>``; the default when left out): its clock,
providers, resources, faults, journal and webhook attempts, and its buttons call that
sandbox's control plane (``/_sim/sandboxes/<id>/...``). The sandboxes section lists the live
ones, each with its clock, buttons that move that clock alone, and a link to its page.

With a control token set, the page and ``live`` need it like every ``/_sim`` call. A browser
cannot send a header when it opens a page, so then the page comes without any data and its
script asks for the token, keeps it in the tab's ``sessionStorage`` only, and fills the page
through ``live``. Secrets never reach the page: the journal's entries are masked as the
journal masks them, and credentials are shown masked, their copy buttons fetching the value
from ``/_sim/providers`` (with the token) at the moment of copying.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from simulator.clock import format_iso
from simulator.dashboard.resources import PER_PROVIDER, Resource, live_resources, next_due
from simulator.faults import FAULT_KINDS
from simulator.journal import ALWAYS_SECRET_FIELDS, Entry, mask
from simulator.sandboxes import DEFAULT, Sandboxes
from simulator.state import SimulatorState
from simulator.webhooks import Deliveries

if TYPE_CHECKING:  # Jinja2 is loaded when the page is first rendered, not to serve a poll
    from starlette.templating import Jinja2Templates

__all__ = ["PATH", "FindingsSource", "Resource", "dashboard_routes", "live_resources"]

PATH = "/_sim/ui"

DEFAULT_ROWS = 50
MAX_CHECK = 1000  # the most rows one ``live`` call checks
POLL_MS = 1000
SECURITY_HEADERS = {
    # Only the page's own stylesheet and script; nothing from anywhere else.
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
SECTIONS = ("clock", "sandboxes", "resources", "faults", "webhooks", "plots")
SANDBOX_ROWS = 20  # the newest this many sandboxes are listed, after the default
WEBHOOK_ROWS = 100  # the newest this many webhook attempts are shown
SANDBOX_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class FindingsSource(Protocol):
    """What judges a client's behaviour on journal entries, for the page to show.

    Given entries as the journal writes them (``Entry.as_dict()``, oldest first) and the
    sandbox's ``time_scale``, it returns its findings, each a mapping with the ``seq`` of the
    entry that shows it, the ``check``'s name and a ``message``."""

    def __call__(
        self, entries: Sequence[Mapping[str, Any]], *, time_scale: float
    ) -> Iterable[Mapping[str, Any]]: ...


class BadQuery(ValueError):
    """A query parameter the page cannot use; the message says why."""

    status = 400


class UnknownSandbox(BadQuery):
    """``sandbox`` names no live sandbox."""

    status = 404


@functools.cache
def _templates() -> Jinja2Templates:
    """The page's templates, compiled on first use and shared by every app in the process."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from starlette.templating import Jinja2Templates

    env = Environment(
        loader=PackageLoader("simulator.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = _pretty
    env.filters["iso"] = _iso
    return Jinja2Templates(env=env)


def _pretty(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _iso(value: datetime | None) -> str:
    return "" if value is None else format_iso(value)


def authorized(request: Request, state: SimulatorState) -> bool:
    """Whether the request carries the control token (as ``/_sim`` reads it), if one is set."""
    token = state.settings.control_token
    if not token:
        return True
    given = request.headers.get("x-bulksim-token") or ""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = given or bearer
    return hmac.compare_digest(given.encode(), token.encode())


def _filters(request: Request, state: SimulatorState) -> tuple[str | None, str | None, int]:
    params = request.query_params
    provider = params.get("provider") or None
    if provider is not None and provider not in state.runtimes:
        raise BadQuery(f"unknown provider {provider!r}; known: {', '.join(state.runtimes)}")
    operation = params.get("operation") or None
    known = {op for ops in state.operations().values() for op in ops}
    if operation is not None and operation not in known:
        raise BadQuery(f"unknown operation {operation!r}")
    rows_text = params.get("rows", "")
    if rows_text and (not rows_text.isdigit() or not 1 <= int(rows_text) <= 100_000):
        raise BadQuery("rows must be a whole number from 1 to 100000")
    return provider, operation, int(rows_text) if rows_text else DEFAULT_ROWS


def _credential_rows(
    credentials: Mapping[str, object], secret_fields: frozenset[str], prefix: str = ""
) -> list[dict[str, object]]:
    """Each credential leaf: its path, and its value masked unless it names something."""
    rows: list[dict[str, object]] = []
    items: Iterable[tuple[str, object]] = credentials.items()
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += _credential_rows(value, secret_fields, f"{path}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    rows += _credential_rows(item, secret_fields, f"{path}.{i}.")
        elif value is not None:
            text = str(value)
            name = str(key).lower()
            naming = name in ("name", "identifier") or name.endswith("id")
            secret = name in secret_fields or not naming
            rows.append({"path": path, "value": mask(text) if secret else text, "secret": secret})
    return rows


def _providers(request: Request, state: SimulatorState) -> list[dict[str, object]]:
    origin = f"{request.url.scheme}://{request.url.netloc}{state.base_path}"
    listing: list[dict[str, object]] = []
    for name, runtime in state.runtimes.items():
        provider = runtime.provider
        secret = ALWAYS_SECRET_FIELDS | {f.lower() for f in provider.secret_fields}
        listing.append(
            {
                "name": name,
                "title": provider.title,
                "base_url": f"{origin}{provider.mount}",
                "spec_url": f"{origin}{provider.mount}/openapi.json",
                "credentials": _credential_rows(provider.credentials(runtime.context), secret),
                "operations": provider.operations(),
                "errors": [e.__name__ for e in provider.errors],
            }
        )
    return listing


def _unchecked(entry: Entry) -> bool:
    """Whether the entry is still to be checked against the spec."""
    return entry.validator is not None and entry._violations is None


def _check(entries: list[Entry]) -> None:
    """Check the entries whose answer is done against the spec (each keeps what it found)."""
    for entry in entries:
        if entry.duration_ms is not None:
            entry.violations  # noqa: B018 - read to check it


def _row(entry: Entry) -> dict[str, Any]:
    """The entry as the journal shows it; one not checked yet is not checked here."""
    from simulator.dashboard import plots  # loaded with the first page, not to serve a poll

    unchecked = _unchecked(entry)
    shown = (dataclasses.replace(entry, validator=None) if unchecked else entry).as_dict()
    shown["duration_ms"] = plots.duration_ms(entry)
    shown["unchecked"] = unchecked
    return shown


async def _select(
    state: SimulatorState, provider: str | None, operation: str | None, since: int | None, rows: int
) -> tuple[list[Entry], int]:
    await state.journal.refresh()  # on a shared store: every process's entries
    entries = state.journal.select(provider=provider, operation=operation, since=since, tail=rows)
    last = max((e.seq for e in entries), default=since or 0)
    return entries, last


def _shown(entries: list[Entry]) -> list[dict[str, Any]]:
    """The rows, newest first."""
    return [_row(e) for e in reversed(entries)]


def _findings(
    source: FindingsSource | None, state: SimulatorState, rows: list[dict[str, Any]]
) -> dict[int, list[dict[str, str]]]:
    """What ``source`` finds in ``rows`` (newest first), by sequence number; spec violations
    are left out, as each row shows its own."""
    if source is None or not rows:
        return {}
    found: dict[int, list[dict[str, str]]] = {}
    for finding in source(rows[::-1], time_scale=state.settings.time_scale):
        if finding["check"] != "spec":
            found.setdefault(int(finding["seq"]), []).append(
                {"check": str(finding["check"]), "message": str(finding["message"])}
            )
    return found


def _with_findings(
    rows: list[dict[str, Any]], found: Mapping[int, list[dict[str, str]]]
) -> list[dict[str, Any]]:
    for row in rows:
        row["findings"] = found.get(row["seq"], [])
    return rows


def _check_url(provider: str | None, operation: str | None, rows: int, sandbox: str) -> str:
    """The page with the same filters, its rows checked against the spec."""
    query = {
        "sandbox": "" if sandbox == DEFAULT else sandbox,
        "provider": provider or "",
        "operation": operation or "",
        "rows": str(rows),
    }
    kept = {k: v for k, v in query.items() if v and (k != "rows" or rows != DEFAULT_ROWS)}
    return f"?{urlencode(kept | {'check': 'all'})}#journal"


def _to_check(text: str) -> set[int]:
    """The sequence numbers of ``live``'s ``check``."""
    seqs = [part.strip() for part in text.split(",")] if text else []
    if not all(seq.isdigit() for seq in seqs) or len(seqs) > MAX_CHECK:
        raise BadQuery(f"check must be at most {MAX_CHECK} sequence numbers separated by commas")
    return {int(seq) for seq in seqs}


def control_path(sandbox_id: str) -> str:
    """Where the sandbox's control plane is served (below the app's root path)."""
    return "/_sim" if sandbox_id == DEFAULT else f"/_sim/sandboxes/{sandbox_id}"


def _view_url(root: str, sandbox_id: str) -> str:
    return f"{root}{PATH}" if sandbox_id == DEFAULT else f"{root}{PATH}?sandbox={sandbox_id}"


@dataclasses.dataclass(frozen=True)
class View:
    """What one request to the page looks at: its sandbox and what serves it."""

    sandbox: str
    state: SimulatorState
    sandboxes: Sandboxes | None
    deliveries: Deliveries | None

    @property
    def control(self) -> str:
        return control_path(self.sandbox)


async def _sandbox_rows(view: View, root: str, shown_due: Resource | None) -> dict[str, Any]:
    """The default and the newest live sandboxes, each with its clock and next due event
    (``shown_due``: the shown sandbox's, already found)."""
    if view.sandboxes is None:
        return {"sandbox_rows": [], "sandboxes_more": 0}
    default, *others = view.sandboxes.listing()
    shown = [default, *others[::-1][:SANDBOX_ROWS]]
    rows = []
    for sandbox in shown:
        if sandbox.id == view.sandbox:
            due = shown_due
        else:
            due = next_due(await live_resources(sandbox.state))
        rows.append(
            {
                "id": sandbox.id,
                "name": sandbox.name,
                "kind": sandbox.state.clock.kind,
                "now": format_iso(sandbox.state.clock.now()),
                "created": format_iso(sandbox.created),
                "control": f"{root}{control_path(sandbox.id)}",
                "call": control_path(sandbox.id),
                "url": _view_url(root, sandbox.id),
                # The exact instant for the button, and as the page writes every other time.
                "due": None if due is None or due.ready_at is None else due.ready_at.isoformat(),
                "due_shown": ""
                if due is None or due.ready_at is None
                else format_iso(due.ready_at),
                "shown": sandbox.id == view.sandbox,
            }
        )
    return {"sandbox_rows": rows, "sandboxes_more": max(0, len(others) - SANDBOX_ROWS)}


async def _webhook_rows(view: View) -> dict[str, Any]:
    """The sandbox's webhook attempts, newest first (the signature header left out)."""
    if view.deliveries is None:
        return {"webhooks_on": False, "attempts": [], "attempts_more": 0}
    attempts = await view.deliveries.attempts(view.state)
    newest = attempts[::-1][:WEBHOOK_ROWS]
    for attempt in newest:
        attempt.pop("signature", None)
    return {
        "webhooks_on": True,
        "attempts": newest,
        "attempts_more": max(0, len(attempts) - WEBHOOK_ROWS),
    }


async def _sections(view: View, root: str) -> dict[str, Any]:
    from simulator.dashboard import plots

    state = view.state
    now = state.clock.now()
    entries = state.journal.select()
    resources = await live_resources(state)
    base = f"{root}{state.base_path}"
    mounts = {name: f"{base}{runtime.provider.mount}" for name, runtime in state.runtimes.items()}
    due = next_due(resources)
    return {
        "clock": {"kind": state.clock.kind, "now": format_iso(now)},
        "sandbox": view.sandbox,
        "resources": [
            (r, plots.progress_line(r.timeline, r.total, now), mounts[r.provider])
            for r in resources
        ],
        "due": due,
        "per_provider": PER_PROVIDER,
        "faults": [f.as_dict() for f in state.faults.list()],
        "rps": plots.requests_per_second(entries, now),
        "latency": plots.latency_by_operation(entries),
        **(await _sandbox_rows(view, root, due)),
        **(await _webhook_rows(view)),
    }


class Dashboard:
    def __init__(
        self,
        state: SimulatorState,
        sandboxes: Sandboxes | None = None,
        deliveries: Deliveries | None = None,
        findings: FindingsSource | None = None,
    ) -> None:
        self.state = state
        self.sandboxes = sandboxes
        self.deliveries = deliveries
        self.findings = findings

    @property
    def templates(self) -> Jinja2Templates:
        """Compiled when the page is first rendered, not to serve a poll."""
        return _templates()

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        return self.templates.get_template(name).render(context)

    def _view(self, request: Request, *, locked: bool) -> View:
        """The sandbox the request asks for (``sandbox``), the default when left out.

        Without the token only its form is checked: whether it exists is not told."""
        sandbox_id = request.query_params.get("sandbox") or DEFAULT
        if not SANDBOX_ID.fullmatch(sandbox_id):
            raise BadQuery("sandbox must be a sandbox id (GET /_sim/sandboxes lists them)")
        state = self.state
        if sandbox_id != DEFAULT and not locked:
            found = None if self.sandboxes is None else self.sandboxes.get(sandbox_id)
            if found is None:
                raise UnknownSandbox(
                    f"no sandbox {sandbox_id!r}: it was never created, was deleted, or expired "
                    "after being idle (GET /_sim/sandboxes lists the live ones)"
                )
            state = found.state
        return View(sandbox_id, state, self.sandboxes, self.deliveries)

    async def page(self, request: Request) -> Response:
        locked = not authorized(request, self.state)
        try:
            view = self._view(request, locked=locked)
            state = view.state
            provider, operation, rows = _filters(request, state)
        except BadQuery as exc:
            return HTMLResponse(str(exc), status_code=exc.status, headers=SECURITY_HEADERS)
        check = request.query_params.get("check", "")
        if check not in ("", "all"):
            return HTMLResponse(
                "check must be all (or left out)", status_code=400, headers=SECURITY_HEADERS
            )
        context: dict[str, Any] = {
            "root": request.scope.get("root_path", ""),
            "last": 0,
            "locked": locked,
            "token_required": bool(state.settings.control_token),
            "sandbox": view.sandbox,
            "control": view.control,
            "provider": provider,
            "operation": operation,
            "rows": rows,
            "check_url": _check_url(provider, operation, rows, view.sandbox),
            "poll_ms": POLL_MS,
            "kinds": FAULT_KINDS,
            "names": list(state.runtimes),
            "operations": state.operations(),
            "errors": state.error_names(),
            "findings_on": self.findings is not None,
        }
        if not locked:
            entries, last = await _select(state, provider, operation, None, rows)
            if check:
                _check(entries)
            shown = _shown(entries)
            context |= {
                "providers": _providers(request, state),
                "entries": _with_findings(shown, _findings(self.findings, state, shown)),
                "last": last,
                **(await _sections(view, context["root"])),
            }
        return self.templates.TemplateResponse(
            request, "page.html", context, headers=SECURITY_HEADERS
        )

    async def live(self, request: Request) -> Response:
        if not authorized(request, self.state):
            return JSONResponse({"error": "control plane token required (X-Bulksim-Token)"}, 401)
        try:
            view = self._view(request, locked=False)
            state = view.state
            provider, operation, rows = _filters(request, state)
            since_text = request.query_params.get("since", "")
            if since_text and not since_text.isdigit():
                raise BadQuery("since must be a sequence number")
            to_check = _to_check(request.query_params.get("check", ""))
        except BadQuery as exc:
            return JSONResponse({"error": str(exc)}, exc.status)
        since = int(since_text) if since_text else None
        entries, last = await _select(state, provider, operation, since, rows)
        again = [
            e for e in state.journal.select(since=min(to_check, default=0) - 1) if e.seq in to_check
        ]
        # Checking may build the validator first: in a worker thread, off the event loop.
        await anyio.to_thread.run_sync(_check, [*entries, *again])
        # The findings of the rows the page shows: judged on all of them, new or not.
        window = (
            entries if since is None else (await _select(state, provider, operation, None, rows))[0]
        )
        found = await anyio.to_thread.run_sync(_findings, self.findings, state, _shown(window))
        rows_context = {
            "check_url": _check_url(provider, operation, rows, view.sandbox),
            "findings_on": self.findings is not None,
        }
        context = await _sections(view, request.scope.get("root_path", ""))
        sections = {name: self._render(f"_{name}.html", context) for name in SECTIONS}
        if since is None:
            sections["providers"] = self._render(
                "_providers.html", {"providers": _providers(request, state)}
            )
        body = {
            "last": last,
            "rows": self._render(
                "_rows.html",
                rows_context | {"entries": _with_findings(_shown(entries), found), "since": since},
            ),
            "checked": {
                str(e.seq): self._render(
                    "_rows.html",
                    rows_context | {"entries": _with_findings([_row(e)], found), "since": e.seq},
                )
                for e in again
            },
            # Each shown row's findings now, by sequence number (none: an empty list), for the
            # script to put on the rows it already shows.
            "findings": {str(e.seq): found.get(e.seq, []) for e in window}
            if self.findings is not None
            else {},
            "sections": sections,
        }
        return JSONResponse(body, headers={"cache-control": "no-store"})


def dashboard_routes(
    state: SimulatorState,
    sandboxes: Sandboxes | None = None,
    deliveries: Deliveries | None = None,
    path: str = PATH,
    findings: FindingsSource | None = None,
) -> list[BaseRoute]:
    """The dashboard's routes over ``state`` (the default sandbox), with ``sandboxes`` the
    others, ``deliveries`` their webhooks and ``findings`` what judges the journal's rows,
    for the root app to put before ``/_sim``."""
    dashboard = Dashboard(state, sandboxes, deliveries, findings)
    return [
        Route(path, dashboard.page, methods=["GET"]),
        Route(f"{path}/live", dashboard.live, methods=["GET"]),
        Mount(f"{path}/static", StaticFiles(packages=[("simulator.dashboard", "static")])),
    ]
