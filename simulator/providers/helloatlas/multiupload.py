"""The multiupload body, parsed while it streams in.

A million-file body is some 80 MB of JSON; decoding it whole would hold a million dicts at
once. Instead the top-level object is read token by token and each ``file_urls`` entry goes
straight into a :class:`~simulator.providers.helloatlas.documents.DocumentsBuilder`, so
memory stays at one network chunk plus the batch's compact metadata. The body is refused
once it passes ``max_bytes`` (or at once when ``Content-Length`` says so), and the first
problem found is the one reported, without reading further.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass

from anyio import to_thread
from starlette.requests import Request

from simulator.providers.helloatlas import errors
from simulator.providers.helloatlas.documents import Documents, DocumentsBuilder

__all__ = ["Multiupload", "read_multiupload"]

MAX_TOKEN_CHARS = 64 * 1024
# Text parsed on the event loop itself; a larger chunk is parsed in a worker thread, so a
# multi-megabyte body never holds the loop (the interpreter switches threads every few ms).
INLINE_CHARS = 16 * 1024
MAX_PRODUCT_TYPE_CHARS = 100
_WS = " \t\n\r"
_DECODER = json.JSONDecoder()
_S = r"[ \t\n\r]*"
_STRING = r'"([^"\\\x00-\x1f]*)"'
# The common entry, two escape-free strings and its separator, matched without json.
_ENTRY = re.compile(
    rf"{_S}\{{{_S}\"(file_url|document_id)\"{_S}:{_S}{_STRING}{_S},"
    rf"{_S}\"(file_url|document_id)\"{_S}:{_S}{_STRING}{_S}\}}{_S}([,\]])"
)


@dataclass(frozen=True, slots=True)
class Multiupload:
    product_type: str
    documents: Documents


class _NeedMore(Exception):
    """The buffer ends inside a token."""


class MultiuploadParser:
    """An incremental parser for ``{"product_type": str, "file_urls": [{...}, ...]}``.

    :meth:`feed` takes text as it arrives; :meth:`finish` validates what was seen.
    """

    def __init__(self, builder: DocumentsBuilder) -> None:
        self.builder = builder
        self.fields: dict[str, object] = {}
        self.buf = ""
        self.pos = 0
        self.final = False
        self.state = "start"
        self.key = ""
        self.index = 0
        self.saw_file_urls = False

    def feed(self, text: str, final: bool = False) -> None:
        self.buf = self.buf[self.pos :] + text if self.pos else self.buf + text
        self.pos = 0
        self.final = final
        try:
            while self._step():
                pass
        except _NeedMore:
            if final:
                raise errors.MalformedBody() from None

    def finish(self) -> Multiupload:
        if self.state != "end":
            raise errors.MalformedBody()
        product_type = self.fields.get("product_type")
        if product_type is None and "product_type" not in self.fields:
            raise errors.MissingParameter(field="product_type")
        if (
            not isinstance(product_type, str)
            or not product_type.strip()
            or len(product_type) > MAX_PRODUCT_TYPE_CHARS
        ):
            raise errors.InvalidParameter(
                field="product_type",
                expected=f"a non-empty string of at most {MAX_PRODUCT_TYPE_CHARS} characters",
            )
        if not self.saw_file_urls:
            raise errors.MissingParameter(field="file_urls")
        if self.builder.count == 0:
            raise errors.InvalidParameter(field="file_urls", expected="a non-empty array")
        return Multiupload(product_type, self.builder.build())

    # -- the state machine: each step consumes one token or raises _NeedMore ---------------

    def _step(self) -> bool:
        state = self.state
        if state == "end":
            self._skip_ws(allow_end=True)
            if self.pos < len(self.buf):
                raise errors.MalformedBody()
            return False
        char = self._skip_ws()
        if state == "start":
            self._expect(char, "{", "first_key")
        elif state == "first_key":
            if char == "}":
                self._advance("end")
            else:
                self.state = "key"
        elif state == "key":
            if char != '"':
                raise errors.MalformedBody()
            key = self._value("")
            assert isinstance(key, str)
            self.key = key
            self.state = "colon"
        elif state == "colon":
            self._expect(char, ":", "value")
        elif state == "value":
            self._field(char)
        elif state == "after_value":
            if char not in ",}":
                raise errors.MalformedBody()
            self._advance("key" if char == "," else "end")
        elif state == "items":
            if char == "]":
                self._advance("after_value")
            else:
                self.state = "item"
        elif state == "item":
            self._items()
        elif state == "after_item":
            if char not in ",]":
                raise errors.MalformedBody()
            self._advance("item" if char == "," else "after_value")
        return True

    def _field(self, char: str) -> None:
        if self.key != "file_urls":
            self.fields[self.key] = self._value(self.key)
            self.state = "after_value"
            return
        if self.saw_file_urls:
            raise errors.InvalidParameter(field="file_urls", expected="given only once")
        if char != "[":
            self._value("file_urls")
            raise errors.InvalidParameter(field="file_urls", expected="a non-empty array")
        self.saw_file_urls = True
        self._advance("items")

    def _items(self) -> None:
        buf, pos, index, add = self.buf, self.pos, self.index, self.builder.add
        match = _ENTRY.match
        while (found := match(buf, pos)) is not None:
            key, value, other_key, other_value, separator = found.groups()
            if key == other_key:
                break
            if key == "file_url":
                add(index, other_value, value)
            else:
                add(index, value, other_value)
            index += 1
            pos = found.end()
            if separator == "]":
                self.pos, self.index, self.state = pos, index, "after_value"
                return
        self.pos, self.index = pos, index
        self._skip_ws()
        entry = self._value(f"file_urls[{index}]")
        self.builder.add_object(index, entry)
        self.index += 1
        self.state = "after_item"

    # -- tokens ----------------------------------------------------------------------------

    def _skip_ws(self, allow_end: bool = False) -> str:
        buf, pos = self.buf, self.pos
        while pos < len(buf) and buf[pos] in _WS:
            pos += 1
        self.pos = pos
        if pos == len(buf):
            if allow_end:
                return ""
            raise _NeedMore
        return buf[pos]

    def _expect(self, char: str, wanted: str, then: str) -> None:
        if char != wanted:
            raise errors.MalformedBody()
        self._advance(then)

    def _advance(self, state: str) -> None:
        self.pos += 1
        self.state = state

    def _value(self, field: str) -> object:
        """One whole JSON value at ``pos``; waits for more text when it may be cut off."""
        buf, pos = self.buf, self.pos
        try:
            value, end = _DECODER.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            cut_off = exc.pos >= len(buf) - 12 or exc.msg.startswith("Unterminated string")
            if self.final or not cut_off:
                raise errors.MalformedBody() from None
            if len(buf) - pos > MAX_TOKEN_CHARS:
                raise self._too_long(field) from None
            raise _NeedMore from None
        except RecursionError:
            raise errors.MalformedBody() from None
        if end == len(buf) and not self.final and buf[pos] not in '"[{':
            raise _NeedMore  # a number or literal may go on in the next chunk
        if end - pos > MAX_TOKEN_CHARS:
            raise self._too_long(field)
        self.pos = end
        return value

    @staticmethod
    def _too_long(field: str) -> errors.HelloAtlasError:
        return errors.InvalidParameter(
            field=field or "a key", expected=f"at most {MAX_TOKEN_CHARS} characters of JSON"
        )


async def read_multiupload(request: Request, *, max_bytes: int, max_files: int) -> Multiupload:
    """Parse a multiupload request body of at most ``max_bytes`` bytes as it arrives."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise errors.PayloadTooLarge(limit=max_bytes)
    parser = MultiuploadParser(DocumentsBuilder(max_files))
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    seen = 0
    offloaded = False

    def feed(chunk: bytes, final: bool = False) -> None:
        parser.feed(decoder.decode(chunk, final=final), final=final)

    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_bytes:
                raise errors.PayloadTooLarge(limit=max_bytes)
            if len(chunk) > INLINE_CHARS:
                offloaded = True
                await to_thread.run_sync(feed, chunk)
            elif chunk:
                feed(chunk)
        feed(b"", final=True)
    except UnicodeDecodeError:
        raise errors.MalformedBody() from None
    if offloaded:
        # Building drops the set of a large batch's ids: work of the same order.
        return await to_thread.run_sync(parser.finish)
    return parser.finish()
