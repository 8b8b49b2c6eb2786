"""Check's batch file formats: CSV and JSON, per the File Formats page.

CSV: a header row (column names case-insensitive) with a required ``content`` column, an
optional ``idempotencyKey`` or ``idempotency_key`` column and any ``context.<name>`` columns;
RFC 4180 quoting (``""`` for a literal quote, quoted fields may hold commas and newlines);
blank lines ignored; ``\\n``, ``\\r\\n`` (and a lone ``\\r``) end a line; a UTF-8 BOM is
skipped. CSV is read incrementally, a chunk at a time, and a cell keeps at most
``max_chars + 1`` characters, so memory does not grow with a long cell.

JSON: an array of items or an object with an ``items`` array; an item is
``{content, context?, idempotencyKey?}``.

Rows are numbered as a user finds them: in CSV, the line on which a record starts (the
header is row 1 in a file without leading blank lines); in JSON, the item's 1-based position.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from simulator.providers.check import errors

__all__ = ["FileLimits", "Item", "ParsedFile", "parse_upload", "strict_json"]

Format = Literal["csv", "json"]
MAX_COLUMNS = 1000
EMPTY = "Content is empty, row skipped"


@dataclass(frozen=True, slots=True)
class Item:
    """One item to verify, from a file or a create request."""

    content: str
    context: dict[str, object] | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_items: int = 100
    max_chars: int = 50_000


@dataclass
class ParsedFile:
    format: Format
    items: list[Item] = field(default_factory=list)
    warnings: list[errors.RowError] = field(default_factory=list)


def _too_long(max_chars: int) -> str:
    return f"Content exceeds maximum length ({max_chars} chars), row skipped"


def _fail(row: int, message: str) -> errors.FileParsingFailed:
    return errors.FileParsingFailed([{"row": row, "error": message}])


def detect_format(filename: str, content_type: str, head: bytes) -> Format | None:
    """CSV or JSON from the name, then the part's type, then the first character."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix in ("csv", "json"):
        return "json" if suffix == "json" else "csv"
    if suffix not in ("", "txt"):
        return None
    media = content_type.split(";")[0].strip().lower()
    if media.endswith("json"):
        return "json"
    if media in ("text/csv", "application/csv"):
        return "csv"
    start = head.removeprefix(codecs.BOM_UTF8).lstrip()
    return "json" if start[:1] in (b"[", b"{") else "csv"


async def parse_upload(
    chunks: AsyncIterator[bytes], filename: str, content_type: str, limits: FileLimits
) -> ParsedFile:
    """Parse an uploaded file read as ``chunks``; raises ``FileParsingFailed``."""
    first = b""
    async for chunk in chunks:
        first = chunk
        if chunk:
            break
    kind = detect_format(filename, content_type, first)
    if kind is None:
        suffix = filename.rsplit(".", 1)[-1]
        raise _fail(1, f"Unsupported file type: .{suffix}. Upload a CSV or JSON file")
    if kind == "json":
        parts = [first]
        async for chunk in chunks:
            parts.append(chunk)
        return parse_json_file(b"".join(parts), limits)
    reader = CsvItems(limits)
    reader.feed(first)
    async for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


# -- CSV ------------------------------------------------------------------------------------

_STOP = re.compile(r'[",\r\n]')
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class Cell:
    text: str
    length: int
    quoted: bool


@dataclass(slots=True)
class Record:
    line: int
    cells: list[Cell]

    def blank(self) -> bool:
        return len(self.cells) == 1 and not self.cells[0].quoted and not self.cells[0].text.strip()


class CsvScanner:
    """An incremental RFC 4180 reader: ``feed`` text, get complete records back."""

    def __init__(self, max_chars: int) -> None:
        self.keep = max_chars + 1
        self.line = 1
        self.record_line = 1
        self.cells: list[Cell] = []
        self.parts: list[str] = []
        self.kept = 0
        self.length = 0
        self.quoted = False
        self.state = "start"  # start | plain | quoted | closed
        self.started = False
        self.held = ""

    def feed(self, text: str, final: bool = False) -> list[Record]:
        text = self.held + text
        self.held = ""
        # A CRLF split between two chunks is read whole with the next one.
        if not final and text.endswith("\r"):
            text, self.held = text[:-1], "\r"
        out: list[Record] = []
        i, n = 0, len(text)
        while i < n:
            self.started = True
            if self.state == "quoted":
                j = text.find('"', i)
                end = n if j < 0 else j
                self._add(text[i:end])
                self.line += len(_NEWLINE.findall(text, i, end))
                if j < 0:
                    break
                if j + 1 == n and not final:
                    # A closing quote or the first of a "" escape: the next chunk tells.
                    self.held = '"' + self.held
                    break
                if text.startswith('""', j):
                    self._add('"')
                    i = j + 2
                else:
                    self.state = "closed"
                    i = j + 1
                continue
            match = _STOP.search(text, i)
            end = n if match is None else match.start()
            if end > i:
                self._add(text[i:end])
                if self.state == "start":
                    self.state = "plain"
            if match is None:
                break
            char = text[end]
            if char == '"':
                if self.state == "start":
                    self.state = "quoted"
                    self.quoted = True
                else:
                    self._add('"')
                i = end + 1
            elif char == ",":
                self._end_cell()
                i = end + 1
            else:
                self._end_cell()
                out.append(Record(self.record_line, self.cells))
                self.cells = []
                self.started = False
                self.line += 1
                self.record_line = self.line
                i = end + (2 if text.startswith("\r\n", end) else 1)
        return out

    def finish(self) -> list[Record]:
        """The last record (one without a final newline); raises on an open quote."""
        out = self.feed("", final=True)
        if self.state == "quoted":
            raise _fail(self.record_line, "Unterminated quoted field")
        if self.started:
            self._end_cell()
            out.append(Record(self.record_line, self.cells))
            self.cells = []
            self.started = False
        return out

    def _add(self, text: str) -> None:
        if self.kept < self.keep:
            piece = text[: self.keep - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        self.length += len(text)

    def _end_cell(self) -> None:
        if len(self.cells) < MAX_COLUMNS:
            self.cells.append(Cell("".join(self.parts), self.length, self.quoted))
        self.parts = []
        self.kept = 0
        self.length = 0
        self.quoted = False
        self.state = "start"


@dataclass(frozen=True, slots=True)
class Columns:
    content: int
    idempotency_key: int | None
    context: tuple[tuple[int, str], ...]
    names: tuple[str, ...]


def read_header(record: Record) -> Columns:
    names = tuple(cell.text.strip() for cell in record.cells)
    lowered = [name.lower() for name in names]
    if "content" not in lowered:
        raise _fail(record.line, "Missing required column: content")
    key = next(
        (i for i, name in enumerate(lowered) if name in ("idempotencykey", "idempotency_key")),
        None,
    )
    context: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name.lower().startswith("context.") and len(name) > len("context."):
            key_name = name[len("context.") :]
            if key_name not in seen:
                seen.add(key_name)
                context.append((index, key_name))
    return Columns(lowered.index("content"), key, tuple(context), names)


class CsvItems:
    """Items from a CSV upload, fed as bytes."""

    def __init__(self, limits: FileLimits) -> None:
        self.limits = limits
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.scanner = CsvScanner(limits.max_chars)
        self.columns: Columns | None = None
        self.rows = 0
        self.parsed = ParsedFile("csv")
        self.first = True

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            text = self.decoder.decode(data, final)
        except UnicodeDecodeError:
            raise _fail(self.scanner.line, "File is not valid UTF-8 text") from None
        if self.first and text:
            text = text.removeprefix("\ufeff")
            self.first = False
        if "\x00" in text:
            line = self.scanner.line + text.count("\n", 0, text.index("\x00"))
            raise _fail(line, "File contains a NUL byte; upload a text file")
        if text:
            self._take(self.scanner.feed(text))

    def finish(self) -> ParsedFile:
        self.feed(b"", final=True)
        self._take(self.scanner.finish())
        if self.columns is None:
            raise _fail(1, "File is empty")
        if not self.parsed.items:
            message = "File has no items" if not self.rows else "File has no valid items"
            self.parsed.warnings.insert(0, {"row": 1, "error": message})
            raise errors.FileParsingFailed(self.parsed.warnings)
        return self.parsed

    def _take(self, records: list[Record]) -> None:
        for record in records:
            if record.blank():
                continue
            if self.columns is None:
                self.columns = read_header(record)
                continue
            self.rows += 1
            if self.rows > self.limits.max_items:
                raise _fail(record.line, f"File exceeds maximum of {self.limits.max_items} items")
            self._row(record, self.columns)

    def _row(self, record: Record, columns: Columns) -> None:
        cells = record.cells

        def cell(index: int) -> Cell:
            return cells[index] if index < len(cells) else Cell("", 0, False)

        content = cell(columns.content)
        problem = None
        if content.length > self.limits.max_chars:
            problem = _too_long(self.limits.max_chars)
        elif not content.text.strip():
            problem = EMPTY
        else:
            others = [(index, f"context.{name}") for index, name in columns.context]
            if columns.idempotency_key is not None:
                others.insert(0, (columns.idempotency_key, "idempotencyKey"))
            for index, name in others:
                if cell(index).length > self.limits.max_chars:
                    limit = self.limits.max_chars
                    problem = f"Column {name} exceeds maximum length ({limit} chars), row skipped"
                    break
        if problem:
            self.parsed.warnings.append({"row": record.line, "error": problem})
            return
        context: dict[str, object] = {
            name: cell(index).text for index, name in columns.context if cell(index).text
        }
        key = cell(columns.idempotency_key).text if columns.idempotency_key is not None else ""
        self.parsed.items.append(Item(content.text, context or None, key or None))


# -- JSON -----------------------------------------------------------------------------------


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def strict_json(raw: bytes | str) -> object:
    """``json.loads`` without NaN, Infinity or overflowing numbers; raises ``ValueError``."""
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("nesting too deep") from None


def encodable(value: object) -> bool:
    """Whether ``value`` can be sent back as UTF-8 JSON (no unpaired surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def parse_json_file(data: bytes, limits: FileLimits) -> ParsedFile:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(1, "File is not valid UTF-8 text") from None
    try:
        document = strict_json(text)
    except json.JSONDecodeError as exc:
        raise _fail(exc.lineno, f"Invalid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise _fail(1, f"Invalid JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        document = document["items"]
    if not isinstance(document, list):
        raise _fail(1, "JSON must be an array of items or an object with an items array")
    if len(document) > limits.max_items:
        raise _fail(limits.max_items + 1, f"File exceeds maximum of {limits.max_items} items")
    parsed = ParsedFile("json")
    for row, raw in enumerate(document, start=1):
        item, problem = json_item(raw, limits.max_chars)
        if item is None:
            parsed.warnings.append({"row": row, "error": f"{problem}, row skipped"})
        else:
            parsed.items.append(item)
    if not parsed.items:
        message = "File has no items" if not document else "File has no valid items"
        parsed.warnings.insert(0, {"row": 1, "error": message})
        raise errors.FileParsingFailed(parsed.warnings)
    return parsed


def json_item(raw: object, max_chars: int) -> tuple[Item | None, str]:
    """An item from its JSON form, or None and what is wrong with it."""
    if not isinstance(raw, dict):
        return None, "Item must be an object"
    content = raw.get("content")
    if content is not None and not isinstance(content, str):
        return None, "Content must be a string"
    if content is None or not content.strip():
        return None, "Content is empty"
    if len(content) > max_chars:
        return None, f"Content exceeds maximum length ({max_chars} chars)"
    context = raw.get("context")
    if context is not None and not isinstance(context, dict):
        return None, "Context must be an object"
    key = raw.get("idempotencyKey", raw.get("idempotency_key"))
    if key is not None and not isinstance(key, str):
        return None, "idempotencyKey must be a string"
    if not encodable(raw):
        return None, "Item contains invalid Unicode"
    return Item(content, context or None, key or None), ""
