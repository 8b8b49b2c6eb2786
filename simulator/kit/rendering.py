"""JSON answers rendered with orjson where it is installed, byte for byte as Starlette's.

Starlette's ``JSONResponse`` renders with ``json.dumps`` (compact separators, UTF-8 left as
it is); orjson writes the same bytes for strings, integers, booleans, ``None``, and lists
and dicts keyed by strings, some ten times faster. It does not promise the same digits for
floats (``1e+16`` is ``1e16`` there), so a body holding floats keeps Starlette's rendering;
what orjson refuses (an integer past 64 bits, a key that is not a string) falls back to it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response

try:
    import orjson
except ImportError:  # pragma: no cover - where it cannot be installed
    orjson = None  # type: ignore[assignment]

__all__ = ["EncodedJSONResponse", "FastJSONResponse", "floats_render_alike"]

_CONTENT_TYPE = (b"content-type", JSONResponse.media_type.encode("latin-1"))


class FastJSONResponse(JSONResponse):
    """``JSONResponse`` for bodies without floats, encoded with orjson where installed.

    Made as ``JSONResponse`` makes itself; one with neither headers nor a media type of its
    own, nor a background task (what a poll answers), gets the same two headers in the
    same order straight away.
    """

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if headers is not None or media_type is not None or background is not None:
            super().__init__(content, status_code, headers, media_type, background)
            return
        _made(self, self.render(content), status_code)

    def render(self, content: Any) -> bytes:
        if orjson is not None:
            try:
                return orjson.dumps(content)
            except TypeError:
                pass
        return super().render(content)


class EncodedJSONResponse(Response):
    """A JSON body already encoded (a page a provider keeps): ``Response(body,
    media_type="application/json")``, its two headers made straight away, in that order."""

    media_type = JSONResponse.media_type

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        _made(self, body, status_code)


def _made(response: Response, body: bytes, status_code: int) -> None:
    """``response`` made as Starlette makes a JSON answer of ``body`` without headers of its
    own or a background task: its status, body, and the same headers in the same order."""
    response.status_code = status_code
    response.background = None
    response.body = body
    if status_code < 200 or status_code in (204, 304):
        response.raw_headers = [_CONTENT_TYPE]
    else:
        response.raw_headers = [(b"content-length", b"%d" % len(body)), _CONTENT_TYPE]


def floats_render_alike(values: Iterable[object]) -> bool:
    """Whether orjson writes every float among ``values`` as ``json.dumps`` does (its
    ``repr``; never for NaN or an infinity, which orjson writes as ``null``): a body whose
    floats all do may be a :class:`FastJSONResponse`."""
    if orjson is None:  # pragma: no cover - FastJSONResponse renders as JSONResponse then
        return True  # type: ignore[unreachable]
    for value in values:  # noqa: SIM110 - a loop: all() over a generator costs a poll more
        if type(value) is float and not _float_alike(value):
            return False
    return True


@functools.lru_cache(maxsize=1024)
def _float_alike(value: float) -> bool:
    """Whether orjson writes ``value`` as ``json.dumps`` does (a pure function of it: a body
    polled again holds the same few floats). Equal floats share an entry: they are written
    alike (0.0 and -0.0 both are, each as its repr)."""
    return orjson.dumps(value) == float.__repr__(value).encode()
