"""A batch's documents as compact metadata: each document's id, and what its URL says.

Nothing about a document's extracted data is stored; it is generated when its page is read
(``fakes.py``). The simulator never fetches or echoes a file URL: it only reads the
document's traits (its type and magic words) from it. So what is kept is:

- document ids ``"N"``, ``"N+1"``, ``"N+2"``, ... (canonical decimals counting up by one, as
  most clients number them) as a start and a count, whatever the batch's size; other ids
  packed: the UTF-8 bytes of every id in one buffer plus a 4-byte offset each;
- file URLs that differ only by the document id (``.../scan-{id}.jpg``), or one URL shared
  by every document, as that pattern (traits are read from it when a page is); other URLs
  as one byte of traits each, read when the document is uploaded.

So a million documents numbered 1..1000000 cost a few hundred bytes when their URLs follow
one pattern and a megabyte when they do not, and reading document ``i`` costs the same for
every ``i``.
"""

from __future__ import annotations

import hashlib
import re
import struct
import sys
from array import array
from dataclasses import dataclass
from typing import Annotated, Any

from simulator.providers.helloatlas import errors
from simulator.providers.helloatlas.fakes import Traits, decode_traits, encode_traits, traits_of

__all__ = ["Documents", "DocumentsBuilder"]


class _InBase64:
    """Marks bytes a record's JSON form keeps in base64 (pydantic's ``Base64Bytes``), for the
    codec of a store that keeps records outside the process. Pydantic is imported when that
    codec is built, not with this module: the memory store never builds one."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic import Base64Bytes

        return handler.generate_schema(Base64Bytes)


Base64Bytes = Annotated[bytes, _InBase64]

MAX_DOCUMENT_ID_CHARS = 256
MAX_FILE_URL_CHARS = 2048
# Canonical decimals only: "007" or "+7" would not survive a round trip through int.
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,17}")
_OFFSETS = struct.Struct("<2I")
_URL = re.compile(r"[hH][tT][tT][pP][sS]?://[^\x00-\x20\x7f/?#]+[^\x00-\x20\x7f]*")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Counting:
    """Ids ``str(first)``, ``str(first + 1)``, ..."""

    first: int

    def get(self, index: int) -> str:
        return str(self.first + index)

    def nbytes(self) -> int:
        return 0


@dataclass(frozen=True, slots=True)
class Template:
    """URLs ``prefix + document_id + suffix`` (or just ``prefix`` when ``with_id`` is false)."""

    prefix: str
    suffix: str
    with_id: bool

    def get(self, document_id: str) -> str:
        return f"{self.prefix}{document_id}{self.suffix}" if self.with_id else self.prefix

    def nbytes(self) -> int:
        return len(self.prefix) + len(self.suffix)


@dataclass(frozen=True, slots=True)
class Packed:
    """Strings packed as UTF-8 in one buffer, with a 4-byte offset (little-endian) each."""

    data: Base64Bytes
    offsets: Base64Bytes

    def get(self, index: int) -> str:
        start, end = _OFFSETS.unpack_from(self.offsets, 4 * index)
        return self.data[start:end].decode()

    def nbytes(self) -> int:
        return len(self.data) + len(self.offsets)


@dataclass(frozen=True, slots=True)
class TraitCodes:
    """One byte of traits per document, for URLs that follow no pattern."""

    codes: Base64Bytes

    def get(self, index: int) -> Traits:
        return decode_traits(self.codes[index])

    def nbytes(self) -> int:
        return len(self.codes)


class _Packing:
    """A :class:`Packed` while it grows."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.offsets = array("I", [0])

    def append(self, value: str) -> None:
        self.data += value.encode()
        self.offsets.append(len(self.data))

    def get(self, index: int) -> str:
        return self.data[self.offsets[index] : self.offsets[index + 1]].decode()

    def packed(self) -> Packed:
        if sys.byteorder == "big":  # pragma: no cover - the offsets are kept little-endian
            self.offsets.byteswap()
        return Packed(bytes(self.data), self.offsets.tobytes())


@dataclass(frozen=True, slots=True)
class Documents:
    """The ids of a batch's documents and what their URLs say, in upload order."""

    count: int
    ids: Counting | Packed
    urls: Template | TraitCodes

    def document_id(self, index: int) -> str:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.ids.get(index)

    def traits(self, index: int) -> Traits:
        """The type and magic words document ``index``'s file URL gave it."""
        if isinstance(self.urls, TraitCodes):
            return self.urls.get(index)
        return traits_of(self.urls.get(self.document_id(index)))

    def nbytes(self) -> int:
        """Bytes of metadata held for the documents (beyond a fixed few hundred)."""
        return self.ids.nbytes() + self.urls.nbytes()

    def digest(self) -> str:
        """A hash of everything held: equal digests, equal documents."""
        hasher = hashlib.blake2b(digest_size=16)
        hasher.update(repr((self.count, type(self.ids), type(self.urls))).encode())
        for part in (self.ids, self.urls):
            if isinstance(part, Packed):
                hasher.update(b"%d:" % len(part.data) + part.data + part.offsets)
            elif isinstance(part, TraitCodes):
                hasher.update(part.codes)
            else:
                hasher.update(repr(part).encode())
        return hasher.hexdigest()

    @classmethod
    def of(cls, entries: list[tuple[str, str]]) -> Documents:
        """Documents from ``(document_id, file_url)`` pairs (for seeded batches)."""
        builder = DocumentsBuilder(max_files=len(entries))
        for index, (document_id, file_url) in enumerate(entries):
            builder.add(index, document_id, file_url)
        return builder.build()


class DocumentsBuilder:
    """Takes one ``file_urls`` entry at a time, validates it and keeps it compactly.

    Rejections are HelloAtlas's 400s naming the entry (``file_urls[3].file_url``). While ids
    are packed, a set of them is kept until :meth:`build` to find duplicates.
    """

    def __init__(self, max_files: int) -> None:
        self.max_files = max_files
        self.count = 0
        self._counting: Counting | None = None
        self._packed_ids: _Packing | None = None
        self._seen: set[str] = set()
        self._template: Template | None = None
        self._codes: bytearray | None = None

    def add_object(self, index: int, entry: object) -> None:
        """Validate one decoded ``file_urls`` entry and add it."""
        where = f"file_urls[{index}]"
        if not isinstance(entry, dict):
            raise errors.InvalidParameter(field=where, expected="an object")
        for name in ("file_url", "document_id"):
            if name not in entry:
                raise errors.MissingParameter(field=f"{where}.{name}")
        document_id, file_url = entry["document_id"], entry["file_url"]
        if not isinstance(document_id, str):
            raise errors.InvalidParameter(
                field=f"{where}.document_id", expected="a non-empty string"
            )
        if not isinstance(file_url, str):
            raise errors.InvalidParameter(
                field=f"{where}.file_url", expected="an http or https URL"
            )
        # A JSON escape can smuggle in a lone surrogate, which no response could carry.
        for name, value in (("document_id", document_id), ("file_url", file_url)):
            if not _encodable(value):
                raise errors.InvalidParameter(field=f"{where}.{name}", expected="valid Unicode")
        self.add(index, document_id, file_url)

    def add(self, index: int, document_id: str, file_url: str) -> None:
        """Validate and add entry ``index`` (which must be the next one)."""
        if index >= self.max_files:
            raise errors.TooManyFiles(limit=self.max_files)
        if not document_id or len(document_id) > MAX_DOCUMENT_ID_CHARS:
            raise errors.InvalidParameter(
                field=f"file_urls[{index}].document_id",
                expected=f"a non-empty string of at most {MAX_DOCUMENT_ID_CHARS} characters",
            )
        if len(file_url) > MAX_FILE_URL_CHARS or not _URL.fullmatch(file_url):
            raise errors.InvalidParameter(
                field=f"file_urls[{index}].file_url",
                expected=f"an http or https URL of at most {MAX_FILE_URL_CHARS} characters",
            )
        self._add_id(index, document_id)
        self._add_url(index, document_id, file_url)
        self.count += 1

    def _add_id(self, index: int, document_id: str) -> None:
        if self._packed_ids is None:
            if index == 0 and _DECIMAL.fullmatch(document_id):
                self._counting = Counting(int(document_id))
                return
            if self._counting is not None and document_id == self._counting.get(index):
                return
            counting, self._packed_ids = self._counting, _Packing()
            for earlier in range(index):
                assert counting is not None
                value = counting.get(earlier)
                self._packed_ids.append(value)
                self._seen.add(value)
            self._counting = None
        if document_id in self._seen:
            raise errors.DuplicateDocumentId(document_id=document_id)
        self._seen.add(document_id)
        self._packed_ids.append(document_id)

    def _add_url(self, index: int, document_id: str, file_url: str) -> None:
        if self._codes is None:
            if index == 0:
                # The id's last occurrence: ".../batch-7/doc-7.jpg" varies in its file name.
                at = file_url.rfind(document_id)
                if at < 0:
                    self._template = Template(file_url, "", with_id=False)
                else:
                    end = at + len(document_id)
                    self._template = Template(file_url[:at], file_url[end:], with_id=True)
                return
            assert self._template is not None
            if file_url == self._template.get(document_id):
                return
            template = self._template
            self._codes = bytearray()
            for earlier in range(index):
                self._codes.append(encode_traits(traits_of(template.get(self._id(earlier)))))
            self._template = None
        self._codes.append(encode_traits(traits_of(file_url)))

    def _id(self, index: int) -> str:
        if self._packed_ids is not None:
            return self._packed_ids.get(index)
        assert self._counting is not None
        return self._counting.get(index)

    def build(self) -> Documents:
        self._seen = set()
        ids = self._packed_ids.packed() if self._packed_ids is not None else self._counting
        urls = TraitCodes(bytes(self._codes)) if self._codes is not None else self._template
        if ids is None or urls is None:
            raise errors.InvalidParameter(field="file_urls", expected="a non-empty array")
        return Documents(self.count, ids, urls)
