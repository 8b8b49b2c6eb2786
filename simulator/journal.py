"""The journal: every request a provider received and what it answered, in a bounded ring.

An entry whose connection a ``drop`` fault cut says ``"dropped": true``, and its response
status is ``null``: not one byte of an answer left. One whose client closed the connection
before its body had all arrived (an aborted upload) says ``"disconnected": true``, its status
``null`` too: the client's doing, not a crash.

Headers named as secret by the provider (and a few universal ones), and secret fields inside
JSON and form bodies, are masked whenever an entry is read: nothing leaves the journal
unmasked, and the serving path does no masking work.

On a store of one process's own the ring is kept here, and the serving path may record a
request as a :class:`Sketch` (the parts it had at hand), of which the ring makes the entry
when it is first read. On a store several processes share, it is a ring in the store (on
Redis a capped stream): each process writes its entries there when it has answered
(:meth:`Journal.publish`), and a read first brings this process's copy up to date with what
every process wrote (:meth:`Journal.refresh`); the entries are numbered by the ring, one
sequence for all. There an entry is stored framed (:class:`RecordedCodec`):
its bodies as the bytes they are, after a small JSON head.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast
from urllib.parse import parse_qsl, urlencode

import anyio.to_thread

from simulator.clock import format_iso, parse_iso
from simulator.store import Codec, Store, Table
from simulator.store.base import DEFLATED, FRAME, RAW, Shared, framed, json_bytes, unframed

if TYPE_CHECKING:
    from contracts.validate import SpecValidator

__all__ = ["Entry", "Journal", "Sketch", "credential_values", "mask"]

ALWAYS_SECRET_HEADERS = frozenset({"authorization", "cookie", "x-bulksim-token"})
ALWAYS_SECRET_FIELDS = frozenset({"access_token", "client_secret", "token", "api_key", "password"})


def mask(value: str) -> str:
    """Hide a secret, keeping its last four characters when it is long enough to spare them."""
    return f"***{value[-4:]}" if len(value) >= 12 else "***"


def credential_values(credentials: Mapping[str, object]) -> frozenset[str]:
    """The secret values among a provider's test credentials: every text leaf but those that
    name something (``name``, ``identifier``, ``*id``)."""
    found: set[str] = set()
    stack: list[tuple[str, object]] = list(credentials.items())
    while stack:
        key, value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(value.items())
        elif isinstance(value, list):
            stack.extend((key, item) for item in value)
        elif isinstance(value, str):
            name = key.lower()
            if name not in ("name", "identifier") and not name.endswith("id"):
                found.add(value)
    return frozenset(v for v in found if len(v) >= MIN_SECRET)


@dataclass(slots=True)
class Entry:
    """One request and its response."""

    seq: int
    time: datetime
    provider: str
    operation: str
    method: str
    path: str
    query: str
    raw_request_headers: list[tuple[bytes, bytes]]
    request_body: bytes
    request_size: int
    status: int | None = None  # None: no answer was sent (dropped, or the client left first)
    response_size: int = 0
    raw_response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response_body: bytes = b""
    fault: str | None = None
    dropped: bool = False  # a ``drop`` fault cut the connection: nothing was answered
    # Whether the request's whole body was read (False: a fault answered before a body too
    # large, or of unknown length, had arrived; its body is then not judged).
    body_seen: bool = True
    # The client closed its connection before its body had all arrived (an aborted upload):
    # an event of the client's, not a crash of the simulator; nothing was answered.
    disconnected: bool = False
    secret_fields: frozenset[str] = ALWAYS_SECRET_FIELDS
    secret_headers: frozenset[str] = frozenset()
    local_path: str = ""
    # The provider's own credentials (its keys and secrets), masked wherever they appear.
    known_secrets: frozenset[str] = frozenset()
    duration_ms: float | None = None  # how long the answer took, when it is done
    validator: Callable[[], SpecValidator] | None = None
    _violations: list[str] | None = None

    @property
    def request_headers(self) -> dict[str, str]:
        """The request's headers, secrets masked (masked when read, not on the serving path)."""
        return mask_headers(self.raw_request_headers, self.secret_headers)

    @property
    def response_headers(self) -> dict[str, str]:
        return mask_headers(self.raw_response_headers, frozenset())

    @property
    def violations(self) -> list[str]:
        """How this request breaks the provider's spec; validated on first read once it is
        answered (kept from then on). One still being answered is judged without its body,
        which may not have all arrived, and judged again when next read."""
        if self._violations is not None:
            return self._violations
        if self.validator is None:
            self._violations = []
            return self._violations
        done = self.duration_ms is not None
        whole = done and self.body_seen and self.request_size == len(self.request_body)
        found = self.validator().violations(
            self.method,
            self.local_path,
            self.query,
            self.request_headers,
            self.request_body if whole else None,
        )
        if done:
            self._violations = found
        return found

    def as_dict(self) -> dict[str, object]:
        """The entry as the journal shows it: every secret masked wherever it appears (under
        a secret name in the headers, the query or the body, or a provider credential
        anywhere, even in a body cut short)."""
        shown = self._as_dict()
        found = set(self.known_secrets)
        for name, value in parse_qsl(self.query, keep_blank_values=True):
            if secret_name(name, self.secret_fields):
                found.add(value)
        for raw_name, raw_value in self.raw_request_headers:
            if secret_name(raw_name.decode("latin-1"), self.secret_headers):
                value = raw_value.decode("latin-1")
                found.add(value.partition(" ")[2] or value)
        text = self.request_body.decode("utf-8", errors="replace")
        for name, value in _FIELD.findall(text):
            if secret_name(name, self.secret_fields):
                found.add(value)
        secrets = sorted((v for v in found if len(v) >= MIN_SECRET), key=len, reverse=True)
        if not secrets:
            return shown
        scrubbed = _scrubbed(shown, secrets)
        assert isinstance(scrubbed, dict)
        return scrubbed

    def _as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "time": format_iso(self.time),
            "epoch_ms": math.floor(self.time.timestamp() * 1000),
            "provider": self.provider,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "query": mask_query(self.query, self.secret_fields),
            "request": {
                "headers": self.request_headers,
                "body_seen": self.body_seen,
                "body": _render_body(
                    self.request_body,
                    self.request_headers.get("content-type", ""),
                    self.secret_fields,
                    self.request_size,
                ),
            },
            "response": {
                "status": self.status,
                "headers": self.response_headers,
                "body": _render_body(
                    self.response_body,
                    self.response_headers.get("content-type", ""),
                    self.secret_fields,
                    self.response_size,
                ),
            },
            "fault": self.fault,
            "dropped": self.dropped,
            "disconnected": self.disconnected,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "violations": self.violations,
        }


Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Recorded:
    """An :class:`Entry` as a shared store keeps it (bytes as latin-1 text, round-tripping;
    stored framed, the bodies as bytes, by :class:`RecordedCodec`)."""

    time: datetime
    provider: str
    operation: str
    method: str
    path: str
    query: str
    request_headers: Headers
    request_body: str
    request_size: int
    status: int | None
    response_size: int
    response_headers: Headers
    response_body: str
    fault: str | None
    dropped: bool
    secret_fields: tuple[str, ...]
    secret_headers: tuple[str, ...]
    local_path: str
    validate: bool
    body_seen: bool = True
    disconnected: bool = False
    # The provider's credentials, so that an entry read back is masked like the one recorded.
    known_secrets: tuple[str, ...] = ()
    # How long the answer took: an entry is published once answered, so one read back is
    # judged against the spec whole, body and all (None: kept before this was).
    duration_ms: float | None = None

    @staticmethod
    def of(entry: Entry) -> Recorded:
        return Recorded(
            entry.time,
            entry.provider,
            entry.operation,
            entry.method,
            entry.path,
            entry.query,
            _text_headers(entry.raw_request_headers),
            entry.request_body.decode("latin-1"),
            entry.request_size,
            entry.status,
            entry.response_size,
            _text_headers(entry.raw_response_headers),
            entry.response_body.decode("latin-1"),
            entry.fault,
            entry.dropped,
            tuple(sorted(entry.secret_fields)),
            tuple(sorted(entry.secret_headers)),
            entry.local_path,
            entry.validator is not None,
            entry.body_seen,
            entry.disconnected,
            tuple(sorted(entry.known_secrets)),
            entry.duration_ms,
        )

    def entry(self, seq: int, validator: Callable[[], SpecValidator] | None) -> Entry:
        return Entry(
            seq=seq,
            time=self.time,
            provider=self.provider,
            operation=self.operation,
            method=self.method,
            path=self.path,
            query=self.query,
            raw_request_headers=_raw_headers(self.request_headers),
            request_body=self.request_body.encode("latin-1"),
            request_size=self.request_size,
            status=self.status,
            response_size=self.response_size,
            raw_response_headers=_raw_headers(self.response_headers),
            response_body=self.response_body.encode("latin-1"),
            fault=self.fault,
            dropped=self.dropped,
            secret_fields=frozenset(self.secret_fields),
            secret_headers=frozenset(self.secret_headers),
            local_path=self.local_path,
            validator=validator if self.validate else None,
            body_seen=self.body_seen,
            disconnected=self.disconnected,
            known_secrets=frozenset(self.known_secrets),
            duration_ms=self.duration_ms,
        )


@dataclass(frozen=True, slots=True)
class Floor:
    """Entries numbered up to ``number`` were cleared (the ring's numbers keep counting)."""

    number: int


class RecordedCodec(Codec[Recorded]):
    """The shared ring's codec: an entry is stored framed (see :func:`framed`), its bodies,
    up to ``journal_body_bytes`` each, kept as the bytes they are after a small JSON head
    instead of escaped into JSON text, which cost most of a large answer's publishing. Its
    data (a snapshot's) is what pydantic dumps of a :class:`Recorded`, bodies as latin-1
    text; an entry stored as that JSON text (restored from a snapshot) reads back as well."""

    def __init__(self, kind: type[Recorded] = Recorded) -> None:
        super().__init__(kind)

    def dumps(self, value: Recorded) -> bytes:  # type: ignore[override]
        head = {
            "time": value.time.isoformat().replace("+00:00", "Z"),
            "provider": value.provider,
            "operation": value.operation,
            "method": value.method,
            "path": value.path,
            "query": value.query,
            "request_headers": value.request_headers,
            "request_size": value.request_size,
            "status": value.status,
            "response_size": value.response_size,
            "response_headers": value.response_headers,
            "fault": value.fault,
            "dropped": value.dropped,
            "secret_fields": value.secret_fields,
            "secret_headers": value.secret_headers,
            "local_path": value.local_path,
            "validate": value.validate,
            "body_seen": value.body_seen,
            "disconnected": value.disconnected,
            "known_secrets": value.known_secrets,
            "duration_ms": value.duration_ms,
        }
        raw = {
            "request_body": value.request_body.encode("latin-1"),
            "response_body": value.response_body.encode("latin-1"),
        }
        return framed(head, raw)

    def loads(self, text: str | bytes) -> Recorded:
        parts = unframed(text) if isinstance(text, bytes) else None
        if parts is None:
            return super().loads(text)
        head, raw = parts
        return Recorded(
            time=parse_iso(head["time"]),
            provider=head["provider"],
            operation=head["operation"],
            method=head["method"],
            path=head["path"],
            query=head["query"],
            request_headers=[(k, v) for k, v in head["request_headers"]],
            request_body=raw["request_body"].decode("latin-1"),
            request_size=head["request_size"],
            status=head["status"],
            response_size=head["response_size"],
            response_headers=[(k, v) for k, v in head["response_headers"]],
            response_body=raw["response_body"].decode("latin-1"),
            fault=head["fault"],
            dropped=head["dropped"],
            secret_fields=tuple(head["secret_fields"]),
            secret_headers=tuple(head["secret_headers"]),
            local_path=head["local_path"],
            validate=head["validate"],
            body_seen=head["body_seen"],
            disconnected=head["disconnected"],
            known_secrets=tuple(head["known_secrets"]),
            duration_ms=head.get("duration_ms"),
        )


class PublishedCodec(Codec[Entry]):
    """How :meth:`Journal.publish` writes an entry to the shared ring: straight from the
    :class:`Entry` to the framed value :class:`RecordedCodec` reads, the same bytes its
    ``dumps`` gives of ``Recorded.of(entry)``, without building the :class:`Recorded` on the
    serving path. The head's fields that are the same for every request of a provider's
    operation (its name, its secret names and credentials) are encoded once, kept as a
    template, and joined to each entry's own fields. A response body answered again as the
    very same bytes (a page a provider keeps once it can no longer change) is kept deflated,
    deflated once (:class:`_Deflated`). It only writes: the ring is read through
    :data:`RING`."""

    def __init__(self, kind: type[Entry] = Entry) -> None:
        self.kind = kind  # no pydantic adapter: nothing is read or validated through it
        self._templates: dict[tuple[object, ...], bytes] = {}
        self._deflated = _Deflated()

    def dumps(self, value: Entry) -> bytes:  # type: ignore[override]
        shared = self.dumps_shared(value)
        assert isinstance(shared.head, bytes)
        return shared.head + shared.tail

    def dumps_shared(self, value: Entry) -> Shared:
        """The entry's frame, its response body apart (the frame's last field): a body
        answered again as the very same bytes is a tail other entries share, under its
        digest (a store may keep it once for all of them)."""
        validate = value.validator is not None
        key = (
            value.provider,
            value.operation,
            value.secret_fields,
            value.secret_headers,
            value.known_secrets,
            validate,
        )
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= TEMPLATES:
                self._templates.clear()
            constant = {
                "provider": value.provider,
                "operation": value.operation,
                "secret_fields": sorted(value.secret_fields),
                "secret_headers": sorted(value.secret_headers),
                "validate": validate,
                "known_secrets": sorted(value.known_secrets),
            }
            # The object's members without its braces, to follow the entry's own.
            template = self._templates[key] = b"," + json_bytes(constant)[1:]
        request_body = value.request_body
        response_body, packing, digest = self._deflated.kept(value.response_body)
        head = {
            "time": value.time.isoformat().replace("+00:00", "Z"),
            "method": value.method,
            "path": value.path,
            "query": value.query,
            "request_headers": [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in value.raw_request_headers
            ],
            "request_size": value.request_size,
            "status": value.status,
            "response_size": value.response_size,
            "response_headers": [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in value.raw_response_headers
            ],
            "fault": value.fault,
            "dropped": value.dropped,
            "local_path": value.local_path,
            "body_seen": value.body_seen,
            "disconnected": value.disconnected,
            "duration_ms": value.duration_ms,
            RAW: [
                ["request_body", len(request_body)],
                ["response_body", len(response_body), *packing],
            ],
        }
        frame = b"".join((FRAME, json_bytes(head)[:-1], template, FRAME, request_body))
        return Shared(frame, response_body, digest)

    def loads(self, text: str | bytes) -> Entry:
        raise TypeError("the journal's ring is read through RING")

    def dump(self, value: Entry) -> object:
        raise TypeError("the journal's ring is read through RING")

    def load(self, data: object) -> Entry:
        raise TypeError("the journal's ring is read through RING")


# The head templates a process keeps at most (one per provider's operation, in practice).
TEMPLATES = 1024


class _Deflated:
    """Response bodies as the shared ring keeps them. A body is kept as it is the first time;
    the same bytes object seen again (a kept page, cut once for the journal) is deflated then,
    once, and kept deflated from then on: a poll of a settled page writes some 2 kB to the
    store instead of 16 kB, for no more work than the first, and names it by its digest (a
    store may keep it once for every entry). A body rendered anew each time is never
    deflated, which would cost more than writing it. Holds the last :attr:`SIZE` bodies seen
    (each at most ``journal_body_bytes``) and those deflated."""

    SIZE = 8
    # Smaller bodies are written as they are: deflating them saves less than it costs.
    SMALLEST = 1024

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        # By the body's id: the body itself (kept alive, so the id is not reused meanwhile),
        # and once seen twice its deflated bytes and their digest.
        self._seen: dict[int, tuple[bytes, tuple[bytes, bytes] | None]] = {}

    def kept(self, body: bytes) -> tuple[bytes, list[str], bytes]:
        """What to store of ``body``, how it is packed (``[DEFLATED]``, or as it is), and
        the digest that names it when it is answered again (else ``b""``)."""
        if len(body) < self.SMALLEST:
            return body, [], b""
        seen = self._seen.get(id(body))
        if seen is not None and seen[0] is body:
            again = seen[1]
            if again is None:
                deflated = zlib.compress(body, 1)
                if len(deflated) >= len(body):  # nothing to gain: kept as it is
                    deflated = body
                again = (deflated, hashlib.blake2b(deflated, digest_size=16).digest())
                self._seen[id(body)] = (body, again)
            deflated, digest = again
            return deflated, [] if deflated is body else [DEFLATED], digest
        if len(self._seen) >= self.SIZE:
            del self._seen[next(iter(self._seen))]
        self._seen[id(body)] = (body, None)
        return body, [], b""


RING = Table("journal", Recorded, RecordedCodec)
# The same ring, as publishing writes it (see PublishedCodec).
PUBLISHED = Table("journal", Entry, PublishedCodec)
FLOOR = Table("journal_floor", Floor)


def _text_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


def _raw_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class Sketch(Protocol):
    """A request recorded as the parts its server had at hand (:meth:`Journal.sketch`): an
    :class:`Entry` is made of it when the journal is read, not while it is answered."""

    seq: int

    @property
    def answered(self) -> bool:
        """Whether its answer is done (its entry will not change again)."""

    def entry(self) -> Entry:
        """Its entry as of now."""


class Journal:
    """A ring of the last ``size`` entries; sequence numbers keep counting across evictions.

    With ``store`` (the state's ``_sim`` view of a shared store) the ring is kept there;
    ``validators`` give each provider's spec validator to the entries read back from it.
    """

    def __init__(
        self,
        size: int,
        store: Store | None = None,
        validators: Mapping[str, Callable[[], SpecValidator]] | None = None,
    ) -> None:
        self._entries: deque[Entry | Sketch] = deque(maxlen=size)
        self._sketched = False  # whether the ring may hold sketches not made entries yet
        self._seq = 0
        self._read = 0  # the number of the newest entry read from a shared ring
        self.store = store
        self._validators = dict(validators or {})

    @property
    def shared(self) -> bool:
        """Whether the ring is in a shared store (entries are published, not recorded)."""
        return self.store is not None

    async def publish(self, entry: Entry) -> None:
        """Write an answered entry to the shared ring (numbered by it)."""
        if self.store is None:
            return
        entry.seq = await self.store.push(PUBLISHED, entry, size=self.size)

    async def refresh(self) -> None:
        """Bring this copy up to date with the shared ring (every process's entries)."""
        if self.store is None:
            return
        floor = await self.store.get(FLOOR, "journal")
        after = max(self._read, floor.number if floor else 0)
        if floor is not None and self._entries and self._entries[0].seq <= floor.number:
            kept = [e for e in self._entries if e.seq > floor.number]
            self._entries.clear()
            self._entries.extend(kept)
        for number, recorded in await self.store.recent(RING, after=after):
            self._entries.append(recorded.entry(number, self._validators.get(recorded.provider)))
            self._read = number
        self._read = max(self._read, after)

    async def wipe(self) -> int:
        """:meth:`clear`, of the shared ring too; how many entries were cleared."""
        if self.store is None:
            cleared = len(self)
            self.clear()
            return cleared
        await self.refresh()
        cleared = len(self)
        await self.store.put(FLOOR, "journal", Floor(self._read))
        self.clear()
        return cleared

    def forget(self) -> None:
        """Drop this copy of a shared ring (the store was replaced): read it all again."""
        self._entries.clear()
        self._read = 0

    @property
    def size(self) -> int:
        return self._entries.maxlen or 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def record(self, entry: Entry) -> None:
        self._entries.append(entry)

    def sketch(self, sketch: Sketch) -> None:
        """Record a request as a sketch: its entry is made when the journal is first read
        once it is answered (one still being answered is shown as it stands)."""
        self._entries.append(sketch)
        self._sketched = True

    def _settled(self) -> list[Entry]:
        """The entries, oldest first: each answered sketch made its entry, once."""
        if not self._sketched:
            return cast(list[Entry], list(self._entries))
        kept: list[Entry | Sketch] = []
        shown: list[Entry] = []
        pending = False
        for item in self._entries:
            if isinstance(item, Entry):
                entry = item
            else:
                entry = item.entry()
                if not item.answered:
                    kept.append(item)  # made again when next read
                    shown.append(entry)
                    pending = True
                    continue
            kept.append(entry)
            shown.append(entry)
        self._entries = deque(kept, maxlen=self._entries.maxlen)
        self._sketched = pending
        return shown

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._settled())

    def __len__(self) -> int:
        return len(self._entries)

    def select(
        self,
        provider: str | None = None,
        operation: str | None = None,
        since: int | datetime | None = None,
        tail: int | None = None,
    ) -> list[Entry]:
        """Entries matching every filter given; ``since`` is a sequence number or an instant,
        ``tail`` keeps only the last so many."""
        picked: Iterable[Entry] = self._settled()
        if provider:
            picked = (e for e in picked if e.provider == provider)
        if operation:
            picked = (e for e in picked if e.operation == operation)
        if isinstance(since, int):
            picked = (e for e in picked if e.seq > since)
        elif isinstance(since, datetime):
            picked = (e for e in picked if e.time >= since)
        chosen = list(picked)
        return chosen[-tail:] if tail else chosen

    def clear(self) -> None:
        self._entries.clear()

    @staticmethod
    async def listing(entries: list[Entry], size: int) -> bytes:
        """``{"size": ..., "entries": [...]}`` as JSON, built in a worker thread: checking
        entries against the spec (the first read of each) and rendering them never holds up
        the event loop, so every other request is served meanwhile."""
        return await anyio.to_thread.run_sync(_listing, entries, size)


def _listing(entries: list[Entry], size: int) -> bytes:
    document = {"size": size, "entries": [e.as_dict() for e in entries]}
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


MIN_SECRET = 8  # a value this long found under a secret name is masked wherever it appears
SECRET_WORDS = ("secret", "token", "password", "passwd", "apikey", "api-key", "api_key", "auth")
# A JSON string field (``"name": "value"``), found even in a body the journal cut short.
_FIELD = re.compile(r'"([^"\\]{1,64})"\s*:\s*"([^"\\]*)"')


def secret_name(name: str, secret: frozenset[str]) -> bool:
    """Whether a header, query parameter or field named ``name`` carries a secret."""
    lowered = name.lower()
    return (
        lowered in secret
        or lowered in ALWAYS_SECRET_HEADERS
        or lowered in ALWAYS_SECRET_FIELDS
        or lowered == "key"
        or any(word in lowered for word in SECRET_WORDS)
    )


def mask_query(query: str, secret: frozenset[str]) -> str:
    """The query string with the values of secret-named parameters masked."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(secret_name(k, secret) for k, _ in pairs):
        return query
    return urlencode([(k, mask(v) if secret_name(k, secret) else v) for k, v in pairs], safe="*")


def _scrubbed(value: object, secrets: list[str]) -> object:
    """``value`` with every occurrence of each secret masked (walked without recursion into
    anything deeper than the journal shows: deep bodies are shown as text)."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, mask(secret))
        return value
    if isinstance(value, dict):
        return {k: _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    return value


def mask_headers(headers: Iterable[tuple[bytes, bytes]], secret: frozenset[str]) -> dict[str, str]:
    """Decode ASGI headers, masking the secret ones (names compared lower-case)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if secret_name(name, secret):
            value = _mask_credential(value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _mask_credential(value: str) -> str:
    scheme, sep, rest = value.partition(" ")
    if sep and scheme.lower() in ("bearer", "basic", "token"):
        return f"{scheme} {mask(rest)}"
    return mask(value)


_MULTIPART_PART = re.compile(rb'name="([^"]*)"(?:; filename="([^"]*)")?')


def _render_body(
    body: bytes, content_type: str, secret: frozenset[str], size: int | None
) -> object:
    if not body:
        return None
    kind = content_type.split(";")[0].strip().lower()
    truncated = size is not None and size > len(body)
    if kind == "multipart/form-data":
        parts = [
            {"name": n.decode(errors="replace"), "filename": f.decode(errors="replace") or None}
            for n, f in _MULTIPART_PART.findall(body)
        ]
        return {"multipart": parts, "bytes": size if size is not None else len(body)}
    text = body.decode("utf-8", errors="replace")
    if kind == "application/x-www-form-urlencoded":
        pairs = parse_qsl(text, keep_blank_values=True)
        masked = urlencode(
            [(k, mask(v) if secret_name(k, secret) else v) for k, v in pairs], safe="*"
        )
        return masked + ("…" if truncated else "")
    if kind.endswith("json") and not truncated:
        parsed = parsed_json(text)
        # A body nested deeper than the journal shows is shown as the text it is.
        return text if parsed is NOT_SHOWN else _mask_json(parsed, secret)
    return text + ("…" if truncated else "")


MAX_JSON_DEPTH = 64  # how deep a JSON body the journal shows parsed (a deeper one: as text)
NOT_SHOWN = object()


def parsed_json(text: str, limit: int = MAX_JSON_DEPTH) -> object:
    """``text`` parsed as JSON, or :data:`NOT_SHOWN` when it is not JSON or is nested deeper
    than ``limit`` levels (which no rendering, masking or encoding of it could then survive)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return NOT_SHOWN
    return value if json_depth(value, limit) <= limit else NOT_SHOWN


def json_depth(value: object, limit: int) -> int:
    """How deeply ``value`` nests (walked without recursion; stops counting past ``limit``)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _mask_json(value: object, secret: frozenset[str]) -> object:
    if isinstance(value, dict):
        return {
            k: mask(v) if isinstance(v, str) and secret_name(k, secret) else _mask_json(v, secret)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_json(v, secret) for v in value]
    return value
