"""Settings: one frozen value, built from ``BULKSIM_*`` environment variables and CLI flags.

Nothing reads the environment at import time; ``main()`` reads it once and passes the
result down to :func:`simulator.app.create_app`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from simulator.clock import check_instant, parse_iso

__all__ = [
    "Drift",
    "Range",
    "Settings",
    "SettingsError",
    "build_options",
    "check_drift",
    "option_ranges",
    "parse_drift",
]

ClockKind = Literal["system", "manual"]
# Every processing duration is multiplied by --time-scale: at most this, so that the longest
# duration an option allows still lands on an instant the clock can show.
MAX_TIME_SCALE = 100.0
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Range:
    """The values a numeric option accepts, both ends included.

    A provider's options dataclass declares it on the field's type,
    ``concurrency: Annotated[int, Range(1, 1000)] = 10``; :func:`build_options` refuses a value
    outside it (and NaN or an infinity, always), whichever way the value came: ``--option``,
    ``BULKSIM_OPTIONS``, ``POST /_sim/options``, a sandbox's or a scenario's ``options``.
    """

    low: float
    high: float

    def check(self, label: str, value: float) -> None:
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise SettingsError(f"{label}={value!r}: must be from {self} (see the manual)")

    def __str__(self) -> str:
        return f"{_number(self.low)} to {_number(self.high)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that shapes one simulator instance."""

    host: str = "127.0.0.1"
    port: int = 8700
    seed: int = 0
    # Mixed into every numbered id when set (see simulator.ids): bulksim serve sets a fresh
    # one when no seed is given and state lives in memory, so a restart does not replay ids.
    id_stream: str = ""
    clock: ClockKind = "system"
    start: datetime | None = None
    providers: tuple[str, ...] = ()
    journal_size: int = 1000
    journal_body_bytes: int = 16 * 1024
    journal: bool = True
    validate_requests: bool = True
    control_token: str | None = None
    time_scale: float = 1.0
    options: tuple[tuple[str, str], ...] = field(default=())
    drift: tuple[str, ...] = ()
    sandbox_cap: int = 1000
    sandbox_idle_seconds: float = 3600.0
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_dir: str | None = None
    # Where state lives: memory, sqlite:///path.db (see simulator.store.open_store).
    store: str = "memory"
    # Worker processes serving one socket (bulksim serve --workers); more than one needs a
    # store they share.
    workers: int = 1
    # Webhook deliveries (simulator.webhooks): hosts other than loopback they may reach
    # (none by default), the retry schedule in seconds after a failed attempt, and how long
    # a receiver has to answer.
    webhook_allow_hosts: tuple[str, ...] = ()
    webhook_retries: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0)
    webhook_timeout: float = 10.0
    # Connections (simulator.server.ConnectionLimits): seconds an idle keep-alive connection
    # is kept, seconds a request head may take to arrive whole, seconds a request body may go
    # without a byte, and open connections at most (the longest-waiting one is shed).
    keep_alive_timeout: float = 5.0
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    # Take the scheme and the client's address from X-Forwarded-Proto and X-Forwarded-For
    # when they come from a proxy on this host (127.0.0.1); off: a request's own are used.
    proxy_headers: bool = False
    # The time a webhook signature's t= carries: "wall" (the real clock, which receivers
    # check it against) or "simulated" (the simulator's clock).
    webhook_signature_time: str = "wall"
    # The control plane reads at most this many bytes of a request body (413 beyond), and
    # at most snapshot_body_bytes of a snapshot to load (POST /_sim/snapshot).
    control_body_bytes: int = 1024 * 1024
    snapshot_body_bytes: int = 256 * 1024 * 1024
    # Faults scheduled at once, per sandbox (POST /_sim/faults answers 409 beyond).
    max_faults: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read ``BULKSIM_<FIELD>`` variables; ``overrides`` (CLI flags) win over them."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f"BULKSIM_{f.name.upper()}"
            if key in environ and environ[key] != "":
                values[f.name] = _cast(key, environ[key], f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).checked()

    def checked(self) -> Settings:
        """Fail fast on values that cannot work together."""
        if self.clock not in ("system", "manual"):
            raise SettingsError(f"clock must be 'system' or 'manual', not {self.clock!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be 0..65535, not {self.port}")
        if self.workers < 1:
            raise SettingsError(f"workers must be at least 1, not {self.workers}")
        if self.workers > 1 and self.store.strip() == "memory":
            raise SettingsError(
                "--workers needs a shared store (e.g. --store sqlite:///state.db): "
                "with memory each worker would keep state of its own"
            )
        if self.journal_size < 1:
            raise SettingsError("journal_size must be at least 1")
        if self.journal_body_bytes < 0:
            raise SettingsError("journal_body_bytes must not be negative")
        if not 0 <= self.time_scale <= MAX_TIME_SCALE:
            raise SettingsError(f"time_scale must be a number from 0 to {MAX_TIME_SCALE}")
        if self.sandbox_cap < 0:
            raise SettingsError("sandbox_cap must not be negative (0 turns sandboxes off)")
        if not 0 < self.sandbox_idle_seconds < float("inf"):
            raise SettingsError("sandbox_idle_seconds must be a positive number")
        if any(not 0 <= delay < float("inf") for delay in self.webhook_retries):
            raise SettingsError("webhook_retries must be finite, non-negative seconds")
        if not 0 < self.webhook_timeout < float("inf"):
            raise SettingsError("webhook_timeout must be a positive number of seconds")
        for name in ("keep_alive_timeout", "head_timeout", "body_timeout"):
            if not 0 < getattr(self, name) <= 86_400:
                raise SettingsError(f"{name} must be a positive number of seconds, at most 86400")
        if not 1 <= self.max_connections <= 1_000_000:
            raise SettingsError("max_connections must be from 1 to 1000000")
        if self.webhook_signature_time not in ("wall", "simulated"):
            raise SettingsError(
                "webhook_signature_time must be 'wall' or 'simulated', "
                f"not {self.webhook_signature_time!r}"
            )
        if not 1024 <= self.control_body_bytes <= 1024**3:
            raise SettingsError("control_body_bytes must be from 1024 to 1073741824")
        if not 1024 <= self.snapshot_body_bytes <= 16 * 1024**3:
            raise SettingsError("snapshot_body_bytes must be from 1024 to 17179869184")
        if not 1 <= self.max_faults <= 1_000_000:
            raise SettingsError("max_faults must be from 1 to 1000000")
        if self.start is not None and self.clock != "manual":
            raise SettingsError("start only applies to clock='manual'")
        if self.start is not None:
            try:
                check_instant(self.start)
            except ValueError as exc:
                raise SettingsError(f"start: {exc}") from None
        for text in self.drift:
            parse_drift(text)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("tls_cert and tls_key go together: give both or neither")
        if self.tls_cert is not None and self.tls_dir is not None:
            raise SettingsError("tls_dir holds a generated certificate; not with tls_cert")
        if not self.tls and (self.tls_cert is not None or self.tls_dir is not None):
            return dataclasses.replace(self, tls=True)
        return self

    @property
    def loopback(self) -> bool:
        """Whether the simulator only listens on this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def options_for(self, provider: str) -> dict[str, str]:
        """The ``provider.key=value`` options that name ``provider``, keyed by ``key``."""
        prefix = f"{provider}."
        return {k.removeprefix(prefix): v for k, v in self.options if k.startswith(prefix)}


def parse_option(text: str) -> tuple[str, str]:
    """Split ``provider.key=value``."""
    name, sep, value = text.partition("=")
    if not sep or "." not in name:
        raise SettingsError(f"option {text!r} is not of the form provider.key=value")
    return name.strip(), value.strip()


@dataclass(frozen=True, slots=True)
class Drift:
    """A deliberate departure from the spec on one operation's successful JSON answers.

    ``deepvue.get_batch_processing_status:status=202`` answers 202 instead of the
    documented status; ``...:drop=data.batch_output_file_url`` leaves that field out.
    """

    provider: str
    operation: str
    kind: Literal["status", "drop"]
    value: str


def parse_drift(text: str) -> Drift:
    """Parse ``provider.operation:status=NNN`` or ``provider.operation:drop=a.b.c``."""
    target, _, change = text.partition(":")
    provider, _, operation = target.partition(".")
    kind, _, value = change.partition("=")
    if not provider or not operation or kind not in ("status", "drop") or not value:
        raise SettingsError(
            f"drift {text!r} is not provider.operation:status=NNN or provider.operation:drop=field"
        )
    if kind == "status" and not (value.isdigit() and 100 <= int(value) <= 599):
        raise SettingsError(f"drift {text!r}: status must be 100..599")
    return Drift(provider, operation, "status" if kind == "status" else "drop", value)


def check_drift(drift: Iterable[str], operations: Mapping[str, Sequence[str]]) -> None:
    """Refuse a drift that names no known provider or operation, listing the known ones
    (``operations`` maps each provider to its operation names), as faults are refused."""
    for text in drift:
        parsed = parse_drift(text)
        if parsed.provider not in operations:
            known = ", ".join(operations)
            raise SettingsError(
                f"drift {text!r}: unknown provider {parsed.provider!r}; known: {known}"
            )
        if parsed.operation not in operations[parsed.provider]:
            known = ", ".join(operations[parsed.provider])
            raise SettingsError(
                f"drift {text!r}: unknown operation {parsed.operation!r} for "
                f"{parsed.provider}; known: {known}"
            )


def _cast(key: str, raw: str, name: str) -> Any:
    try:
        if name in (
            "port",
            "seed",
            "journal_size",
            "journal_body_bytes",
            "workers",
            "sandbox_cap",
            "max_connections",
            "control_body_bytes",
            "snapshot_body_bytes",
            "max_faults",
        ):
            return int(raw)
        if name in (
            "time_scale",
            "sandbox_idle_seconds",
            "webhook_timeout",
            "keep_alive_timeout",
            "head_timeout",
            "body_timeout",
        ):
            return float(raw)
        if name in ("journal", "validate_requests", "tls", "proxy_headers"):
            return _bool(raw)
        if name == "start":
            return parse_iso(raw)
        if name == "providers":
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if name == "options":
            return tuple(parse_option(p) for p in raw.split(",") if p.strip())
        if name == "webhook_allow_hosts":
            return tuple(p.strip().lower() for p in raw.split(",") if p.strip())
        if name == "webhook_retries":
            return tuple(float(p) for p in raw.split(",") if p.strip())
        if name == "drift":
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise SettingsError(f"{key}={raw!r}: {exc}") from None
    return raw


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (use on/off)")


def build_options(cls: type[T], provider: str, raw: Mapping[str, str]) -> T:
    """Build a provider's frozen options dataclass from ``key=value`` strings.

    Each value is cast to the field's declared type; an unknown key or a bad value raises
    :class:`SettingsError` naming ``provider.key``.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    ranges = option_ranges(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in known:
            choices = ", ".join(sorted(known)) or "none"
            raise SettingsError(f"unknown option {provider}.{key} (known: {choices})")
        value = _cast_to(hints[key], text, f"{provider}.{key}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            ranges.get(key, Range(-math.inf, math.inf)).check(f"{provider}.{key}", value)
        values[key] = value
    return cls(**values)


def option_ranges(cls: type) -> dict[str, Range]:
    """Each option of ``cls`` that declares a :class:`Range`, by name."""
    ranges: dict[str, Range] = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        found = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Range)]
        if found:
            ranges[name] = found[0]
    return ranges


def _cast_to(kind: Any, text: str, label: str) -> Any:
    if isinstance(kind, types.UnionType):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    try:
        if kind is bool:
            return _bool(text)
        if kind in (int, float):
            return kind(text)
        if typing.get_origin(kind) is Literal:
            allowed = typing.get_args(kind)
            if text not in allowed:
                raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
            return text
    except ValueError as exc:
        raise SettingsError(f"{label}={text!r}: {exc}") from None
    return text
