"""JSON answers rendered with orjson where it is installed, byte for byte as Starlette's.

Starlette's ``JSONResponse`` renders with ``json.dumps`` (compact separators, UTF-8 left as
it is); orjson writes the same bytes for strings, integers, booleans, ``None``, and lists
and dicts keyed by strings, some ten times faster. It does not promise the same digits for
floats (``1e+16`` is ``1e16`` there), so a body holding floats keeps Starlette's rendering;
what orjson refuses (an integer past 64 bits, a key that is not a string) falls back to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.responses import JSONResponse

try:
    import orjson
except ImportError:  # pragma: no cover - where it cannot be installed
    orjson = None  # type: ignore[assignment]

__all__ = ["FastJSONResponse", "floats_render_alike"]


class FastJSONResponse(JSONResponse):
    """``JSONResponse`` for bodies without floats, encoded with orjson where installed."""

    def render(self, content: Any) -> bytes:
        if orjson is not None:
            try:
                return orjson.dumps(content)
            except TypeError:
                pass
        return super().render(content)


def floats_render_alike(values: Iterable[object]) -> bool:
    """Whether orjson writes every float among ``values`` as ``json.dumps`` does (its
    ``repr``; never for NaN or an infinity, which orjson writes as ``null``): a body whose
    floats all do may be a :class:`FastJSONResponse`."""
    if orjson is None:  # pragma: no cover - FastJSONResponse renders as JSONResponse then
        return True  # type: ignore[unreachable]
    for value in values:
        if type(value) is float and orjson.dumps(value) != float.__repr__(value).encode():
            return False
    return True
