"""The provider registry: adding a provider is one line here.

The registry names each provider and the package it lives in; the package is imported when
the provider is first needed (its first request, or a control call that reads it), so that
start-up pays for none of them and a request pays only for its own provider.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field

from simulator.kit.provider import Provider

__all__ = ["PROVIDERS", "ProviderLoadError", "Registered", "loaded_providers"]


class ProviderLoadError(RuntimeError):
    """A registered provider's package failed to import, or holds no ``PROVIDER`` record."""


@dataclass(frozen=True)
class Registered:
    """A provider known by name and the package that defines its ``PROVIDER``, loaded on
    first :meth:`load` (once, however many threads ask at the same time)."""

    name: str
    package: str
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def mount(self) -> str:
        return f"/{self.name}"

    def load(self) -> Provider:
        """The provider's record, importing its package the first time; a package that
        cannot be imported raises :class:`ProviderLoadError` naming the provider, each time
        it is asked for (nothing half-made is kept)."""
        found = _loaded.get(self.package)
        if found is not None:
            return found
        with self._lock:
            found = _loaded.get(self.package)
            if found is None:
                found = _import(self)
                _loaded[self.package] = found
        return found


def _import(entry: Registered) -> Provider:
    try:
        module = importlib.import_module(entry.package)
    except Exception as exc:
        raise ProviderLoadError(
            f"provider {entry.name!r} could not be loaded from {entry.package}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    record = getattr(module, "PROVIDER", None)
    if not isinstance(record, Provider) or record.name != entry.name:
        raise ProviderLoadError(
            f"provider {entry.name!r}: {entry.package} defines no PROVIDER record named "
            f"{entry.name!r}"
        )
    return record


# The records loaded so far in this process, by package (shared by every app and sandbox).
_loaded: dict[str, Provider] = {}


def loaded_providers() -> list[str]:
    """The names of the registered providers whose packages this process has loaded."""
    return [entry.name for entry in PROVIDERS if entry.package in _loaded]


PROVIDERS: tuple[Registered, ...] = (
    Registered("deepvue", "simulator.providers.deepvue"),
    Registered("passcreator", "simulator.providers.passcreator"),
    Registered("helloatlas", "simulator.providers.helloatlas"),
    Registered("check", "simulator.providers.check"),
)
