"""bulksim: serve simulated bulk-job providers, and verify any provider against its contract.

    bulksim serve [--host 127.0.0.1] [--port 8700] [--seed 0] [--clock system|manual] ...
    bulksim verify --provider NAME --base-url URL [--credential KEY=VALUE ...] ...

Also run as python -m simulator. Every serve flag has a BULKSIM_* environment variable
(BULKSIM_PORT, BULKSIM_PROVIDERS comma-separated, BULKSIM_OPTIONS comma-separated,
BULKSIM_ACCESS_LOG=off, ...); flags win. The request log (one line per provider request, on
stderr) and uvicorn's own warnings follow --log-level.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from simulator.clock import parse_iso
from simulator.server import LOG_LEVELS
from simulator.settings import Settings, SettingsError, check_drift, parse_option

if TYPE_CHECKING:
    from simulator import FindingsSource, Scenario

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (``bulksim serve: error: ...``), pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


VERIFY_EPILOG = """\
The summary is printed on the console; a JUnit XML report is written only when
--junit-xml PATH is given.

exit status:
  0  conformant: every check passed
  1  drift: the target departed from the spec or the documented behaviour
  2  could not check: unreachable, credentials missing or refused, wrong base URL
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bulksim")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
        from simulator import __version__

        return __version__


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (reading the
    installed distributions is a cost every start would pay otherwise)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"bulksim {_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    # The module docstring is the command's --help: it stays plain text, no reST markup.
    summary, _, rest = (__doc__ or "").partition("\n")
    parser = _Parser(
        prog="bulksim",
        description=summary,
        epilog=rest.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the simulated providers over HTTP",
        description="Serve the simulated providers over HTTP. Every flag has a BULKSIM_* "
        "environment variable (BULKSIM_PORT, BULKSIM_PROVIDERS comma-separated, ...); "
        "flags win.",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8700; 0 picks a free one)")
    serve.add_argument("--seed", type=int, help="seed for every id and fake value (default 0)")
    serve.add_argument("--clock", choices=("system", "manual"), help="time source (default system)")
    serve.add_argument("--start", type=parse_iso, help="manual clock's first instant (ISO-8601)")
    serve.add_argument(
        "--scenario",
        metavar="FILE",
        help="start the default sandbox from this scenario (YAML or JSON; its clock, start, "
        "seed and options take the place of the flags')",
    )
    serve.add_argument(
        "--provider",
        action="append",
        dest="providers",
        metavar="NAME",
        help="serve only this provider (repeatable); one alone is also served at /",
    )
    serve.add_argument(
        "--time-scale", type=float, help="multiply processing durations (0: instant)"
    )
    serve.add_argument(
        "--option",
        action="append",
        dest="options",
        metavar="PROVIDER.KEY=VALUE",
        type=_option,
        help="a provider option (repeatable), e.g. deepvue.processing_seconds=5",
    )
    serve.add_argument(
        "--drift",
        action="append",
        metavar="PROVIDER.OPERATION:status=N|drop=FIELD",
        help="depart from the spec on purpose (repeatable), to see a drift check fail",
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        help="where state lives: memory (default), sqlite:///state.db (relative), "
        "sqlite:////abs/state.db, redis://127.0.0.1:6379/0",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="serve with N worker processes on one port (default 1); needs a shared --store",
    )
    serve.add_argument(
        "--sandbox-cap", type=int, help="live sandboxes at most (default 1000; 0: sandboxes off)"
    )
    serve.add_argument(
        "--sandbox-idle-seconds",
        type=float,
        help="forget a sandbox after this long without a request (default 3600)",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=float,
        metavar="SECONDS",
        help="close a keep-alive connection idle this long (default 5)",
    )
    serve.add_argument(
        "--head-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection whose request head is not whole this long after it began "
        "(default 10)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection that sends no byte of its request body for this long (default 30)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="open connections at most; one more sheds the longest-waiting idle or "
        "half-sent one (default 1000)",
    )
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        default=None,
        help="behind a proxy on this host: take the scheme and the client's address from its "
        "X-Forwarded-Proto and X-Forwarded-For",
    )
    serve.add_argument("--journal-size", type=int, help="entries kept in the journal ring")
    serve.add_argument(
        "--journal-body-bytes", type=int, help="bytes of each body the journal keeps (16384)"
    )
    serve.add_argument(
        "--no-journal",
        dest="journal",
        action="store_false",
        default=None,
        help="do not record traffic",
    )
    serve.add_argument(
        "--no-validation",
        dest="validate_requests",
        action="store_false",
        default=None,
        help="do not check recorded requests against the specs",
    )
    serve.add_argument(
        "--control-token",
        help="require this token on /_sim (generated when bound to a non-loopback address)",
    )
    serve.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="info (default) shows the request log; debug and trace add uvicorn's own lines",
    )
    serve.add_argument(
        "--log-format", choices=("text", "json"), help="text (default), or one JSON object a line"
    )
    serve.add_argument(
        "--access-log",
        type=_on_off,
        metavar="on|off",
        help="one line per provider request on stderr (default on)",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help="serve HTTPS with a certificate signed by a fresh local CA (its path is printed)",
    )
    serve.add_argument(
        "--tls-dir", metavar="DIR", help="write the CA, certificate and key here (default: temp)"
    )
    serve.add_argument("--tls-cert", metavar="PATH", help="serve HTTPS with this PEM certificate")
    serve.add_argument("--tls-key", metavar="PATH", help="the PEM private key of --tls-cert")

    check = commands.add_parser(
        "verify",
        help="run a provider's contract suite against a base URL (bulksim or real)",
        description="Run a provider's contract suite (conformance of every operation, then\n"
        "its documented lifecycle) against a base URL, a bulksim's or the real provider's.",
        epilog=VERIFY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--provider", required=True, help="which provider's contract to check")
    check.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8700/deepvue")
    check.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a credential (repeatable); else <PROVIDER>_<KEY> variables, else a bulksim's own",
    )
    check.add_argument(
        "--junit-xml",
        metavar="PATH",
        help="also write a JUnit XML report to PATH (none is written without this flag)",
    )
    check.add_argument("--max-examples", type=int, default=10, help="generated cases per operation")
    check.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for a batch")
    return parser


def _option(text: str) -> tuple[str, str]:
    try:
        return parse_option(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _on_off(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not on or off")


def logging_from_args(args: argparse.Namespace, environ: dict[str, str]) -> tuple[str, str, bool]:
    """``(level, format, access_log)``: flags, else ``BULKSIM_LOG_LEVEL``, ``BULKSIM_LOG_FORMAT``
    and ``BULKSIM_ACCESS_LOG``, else info, text, on."""
    level = args.log_level or environ.get("BULKSIM_LOG_LEVEL", "").strip().lower() or "info"
    if level not in LOG_LEVELS:
        raise SettingsError(f"BULKSIM_LOG_LEVEL={level!r}: must be one of {', '.join(LOG_LEVELS)}")
    log_format = args.log_format or environ.get("BULKSIM_LOG_FORMAT", "").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise SettingsError(f"BULKSIM_LOG_FORMAT={log_format!r}: must be text or json")
    access_log = args.access_log
    if access_log is None:
        raw = environ.get("BULKSIM_ACCESS_LOG", "").strip()
        try:
            access_log = _on_off(raw) if raw else True
        except argparse.ArgumentTypeError:
            raise SettingsError(f"BULKSIM_ACCESS_LOG={raw!r}: must be on or off") from None
    return level, log_format, access_log


def run_verify(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from pathlib import Path

    from contracts.verify import verify
    from simulator import provider_names

    known = list(provider_names())
    if args.provider not in known:
        print(
            f"bulksim: unknown provider {args.provider!r}; known: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    given = dict(_credential(text) for text in args.credential)
    try:
        report = verify(
            args.provider,
            args.base_url,
            credentials=given,
            environ=environ,
            max_examples=args.max_examples,
            timeout=args.timeout,
        )
    except ValueError as exc:
        print(f"bulksim: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if args.junit_xml:
        Path(args.junit_xml).write_bytes(report.junit_xml())
    return 1 if report.drifted else 0


def _credential(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SettingsError(f"credential {text!r} is not KEY=VALUE")
    return key.strip(), value


def settings_from_args(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    overrides = {
        "host": args.host,
        "port": args.port,
        "seed": args.seed,
        "clock": args.clock,
        "start": args.start,
        "providers": tuple(args.providers) if args.providers else None,
        "time_scale": args.time_scale,
        "options": tuple(args.options) if args.options else None,
        "drift": tuple(args.drift) if args.drift else None,
        "journal_size": args.journal_size,
        "sandbox_cap": args.sandbox_cap,
        "sandbox_idle_seconds": args.sandbox_idle_seconds,
        "journal_body_bytes": args.journal_body_bytes,
        "journal": args.journal,
        "validate_requests": args.validate_requests,
        "control_token": args.control_token,
        "tls": args.tls,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "tls_dir": args.tls_dir,
        "store": args.store,
        "workers": args.workers,
        "keep_alive_timeout": args.keep_alive_timeout,
        "head_timeout": args.head_timeout,
        "body_timeout": args.body_timeout,
        "max_connections": args.max_connections,
        "proxy_headers": args.proxy_headers,
    }
    if args.seed is None and not environ.get("BULKSIM_SEED", "").strip():
        # No seed asked for: a run on the memory store, whose id counters start again at
        # every start, takes ids of its own (a persistent store's counters just continue).
        overrides["id_stream"] = secrets.token_hex(8)
    settings = Settings.from_env(environ, **overrides)
    if settings.drift:  # the providers' operations are read (their packages loaded) only then
        from simulator import available_providers

        check_drift(settings.drift, {p.name: p.operations() for p in available_providers()})
    if not settings.loopback and not settings.control_token:
        settings = Settings.from_env(
            environ, **{**overrides, "control_token": secrets.token_urlsafe(24)}
        )
    if settings.store.strip() != "memory":
        settings = dataclasses.replace(settings, id_stream="")
    return settings


def banner(
    settings: Settings, port: int, generated_token: bool, ca_file: Path | None = None
) -> str:
    from simulator import provider_names

    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    origin = f"{'https' if settings.tls else 'http'}://{host}:{port}"
    store = "" if settings.store == "memory" else f", store {settings.store}"
    if settings.workers > 1:
        store += f", {settings.workers} workers"
    lines = [f"bulksim serving on {origin} (clock {settings.clock}, seed {settings.seed}{store})"]
    chosen = [n for n in provider_names() if not settings.providers or n in settings.providers]
    for name in chosen:
        lines.append(f"  {name:<12} {origin}/{name}")
    lines.append(
        f"  {'control':<12} {origin}/_sim  (test credentials: GET {origin}/_sim/providers)"
    )
    if len(chosen) == 1:
        lines.append(f"  {chosen[0]} is also served at {origin}/")
    if settings.control_token:
        shown = settings.control_token if generated_token else "(as given)"
        lines.append(f"  control token: {shown}  (send X-Bulksim-Token)")
    if ca_file is not None:
        lines.append(
            f"  {'CA file':<12} {ca_file}  (trust it: SSL_CERT_FILE, REQUESTS_CA_BUNDLE, "
            "NODE_EXTRA_CA_CERTS, curl --cacert)"
        )
    return "\n".join(lines)


def credentials_text(app_state: object) -> str:
    from simulator import SimulatorState

    assert isinstance(app_state, SimulatorState)
    lines = []
    for name, runtime in app_state.runtimes.items():
        creds = runtime.provider.credentials(runtime.context)
        flat = ", ".join(f"{k}={v}" for k, v in creds.items() if isinstance(v, str))
        lines.append(f"  {name:<12} {flat}")
    return "test credentials:\n" + "\n".join(lines)


# How long after the port is bound the test credentials are printed: reading them loads
# every provider's package, which a request already waiting at start-up need not wait for.
CREDENTIALS_AFTER = 0.1


def print_credentials_soon(app_state: object) -> None:
    """Print the test credentials from a thread, CREDENTIALS_AFTER seconds from now (the
    state builds each provider's runtime once, whichever thread asks first)."""

    def show() -> None:
        print(credentials_text(app_state), flush=True)

    timer = threading.Timer(CREDENTIALS_AFTER, show)
    timer.daemon = True
    timer.start()


def lazy_findings() -> FindingsSource:
    """The dashboard's behaviour findings (the harness's checks), loaded when a page first
    asks for them: the checks and every provider's suite (Hypothesis and the reference
    clients with them) are not imported to serve a poll, so start-up does not pay for them."""
    judge: FindingsSource | None = None

    def lazy(
        entries: Sequence[Mapping[str, Any]], *, time_scale: float
    ) -> Iterable[Mapping[str, Any]]:
        nonlocal judge
        if judge is None:
            from contracts.harness import findings_source

            judge = findings_source()
        return judge(entries, time_scale=time_scale)

    return lazy


def serve(
    settings: Settings,
    generated_token: bool,
    log_level: str = "info",
    log_format: str = "text",
    access_log: bool = True,
    scenario: Scenario | None = None,
) -> int:
    from simulator import create_app, start_default
    from simulator.server import ConnectionLimits, configure_logging, run_uvicorn
    from simulator.tls import tls_files

    # Before the app: each gateway reads the request log's level once, when it is built.
    configure_logging(log_level, "json" if log_format == "json" else "text", access_log)
    # The dashboard shows each journal row's behaviour findings, by the harness's checks.
    app = create_app(settings, findings=lazy_findings())
    if scenario is not None:
        asyncio.run(start_default(app, scenario))
    with tls_files(settings) as tls:

        def announce(port: int) -> None:
            ca_file = tls.ca_file if tls is not None else None
            print(banner(settings, port, generated_token, ca_file), flush=True)
            if settings.workers > 1:
                print(credentials_text(app.state.sim), flush=True)
            else:
                print_credentials_soon(app.state.sim)

        options: dict[str, Any] = tls.uvicorn_options() if tls is not None else {}
        options["limits"] = ConnectionLimits(
            keep_alive_timeout=settings.keep_alive_timeout,
            head_timeout=settings.head_timeout,
            body_timeout=settings.body_timeout,
            max_connections=settings.max_connections,
        )
        options["proxy_headers"] = settings.proxy_headers
        if settings.workers > 1:
            # Each worker builds its own app; this one was built to check the store and to
            # print the credentials.
            from simulator.workers import run_workers

            logging = (log_level, log_format, access_log)
            # By its module's own name (run as ``python -m simulator`` this module is
            # ``__main__``, which a worker process cannot import it by).
            from simulator.__main__ import lazy_findings as findings

            return run_workers(settings, logging, announce, findings=findings, **options)
        return run_uvicorn(app, settings.host, settings.port, announce, **options)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bulksim`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    try:
        if args.command == "verify":
            return run_verify(args, environ)
        settings = settings_from_args(args, environ)
        if args.command == "serve":
            from simulator import load_scenario, settings_with

            scenario = None if args.scenario is None else load_scenario(args.scenario)
            if scenario is not None:
                settings = settings_with(settings, scenario).checked()
                if scenario.seed is not None:  # the scenario's seed: its ids, every run
                    settings = dataclasses.replace(settings, id_stream="")
            generated = (
                settings.control_token is not None
                and args.control_token is None
                and not (environ.get("BULKSIM_CONTROL_TOKEN"))
            )
            return serve(settings, generated, *logging_from_args(args, environ), scenario)
    except SettingsError as exc:  # a ScenarioError too
        print(f"bulksim: {exc}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
