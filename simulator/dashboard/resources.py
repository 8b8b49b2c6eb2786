"""What the dashboard can tell of each provider's batches, processes and fileIds.

Today this reads the journal: the answers a provider gave to submits and polls, as its
clients saw them. A resource nobody has submitted or polled since the journal was last
cleared (the seeded examples, say) is not shown, and what the journal does not carry (when a
batch will be ready) stays unknown. ``live_resources`` is the one function the page calls,
so a reading straight from the providers' stores can replace it without touching the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from simulator.clock import format_iso
from simulator.journal import Entry
from simulator.state import SimulatorState

__all__ = ["Resource", "live_resources"]


@dataclass
class Resource:
    """One batch, process or fileId, as last seen in a provider's answers."""

    provider: str
    kind: str  # "batch", "process" or "file"
    id: str
    status: str = "unknown"
    current: int | None = None
    total: int | None = None
    ready_at: str | None = None  # unknown until read from the provider's store
    created_at: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    detail: str | None = None
    seen_at: datetime | None = None
    # (simulated time, current) of every answer that told how far along it was
    history: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.provider, self.kind, self.id)

    @property
    def percent(self) -> int | None:
        if self.current is None or not self.total:
            return None
        return min(100, round(100 * self.current / self.total))


@dataclass(frozen=True)
class Seen:
    """What one answer said of one resource; ``None`` fields said nothing."""

    kind: str
    id: str
    status: str | None = None
    current: int | None = None
    total: int | None = None
    created_at: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    detail: str | None = None


Observer = Callable[[Entry, Any, Any, str], Iterable[Seen]]


def live_resources(sim: SimulatorState, provider: str | None = None) -> list[Resource]:
    """Every batch, process and fileId the journal has seen, the most recently seen first."""
    found: dict[tuple[str, str, str], Resource] = {}
    for entry in sim.journal.select(provider=provider):
        observer = OBSERVERS.get((entry.provider, entry.operation))
        if observer is None or entry.status is None or not 200 <= entry.status < 300:
            continue
        response = _json(entry.response_body, entry.response_size)
        request = _json(entry.request_body, entry.request_size)
        mount = f"/{entry.provider}"
        for seen in observer(entry, request, response, mount):
            if not seen.id:
                continue
            key = (entry.provider, seen.kind, seen.id)
            resource = found.pop(key, None) or Resource(entry.provider, seen.kind, seen.id)
            found[key] = resource  # re-inserted: the dict stays in order of last sight
            _merge(resource, seen, entry.time)
    return list(reversed(found.values()))


def _merge(resource: Resource, seen: Seen, time: datetime) -> None:
    resource.seen_at = time
    if seen.status is not None:
        resource.status = seen.status
    if seen.total is not None:
        resource.total = seen.total
    if seen.created_at is not None:
        resource.created_at = seen.created_at
    if seen.detail is not None:
        resource.detail = seen.detail
    resource.links.update(seen.links)
    if seen.current is not None:
        resource.current = seen.current
        if not resource.history or resource.history[-1] != (time, seen.current):
            resource.history.append((time, seen.current))


def _json(body: bytes, size: int) -> Any:
    if not body or size > len(body):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# -- Check: fileIds from uploads, batches from creates, reads, lists and cancels ----------------


def _check_batch(body: Any, mount: str) -> Iterator[Seen]:
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        batch_id: str = body["id"]
        yield Seen(
            "batch",
            batch_id,
            status=_str(body.get("status")),
            current=_int(body.get("processedItems")),
            total=_int(body.get("totalItems")),
            created_at=_str(body.get("createdAt")),
            links={"results": f"{mount}/v1/batch/{batch_id}/results"},
        )


def _check_upload(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    if isinstance(response, dict) and isinstance(response.get("fileId"), str):
        expires = _str(response.get("expiresAt"))
        yield Seen(
            "file",
            response["fileId"],
            status="uploaded",
            total=_int(response.get("itemCount")),
            created_at=format_iso(entry.time),
            detail=f"expires {expires}" if expires else None,
        )


def _check_create(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    if isinstance(request, dict) and isinstance(request.get("fileId"), str):
        yield Seen("file", request["fileId"], status="used")
    yield from _check_batch(response, mount)


def _check_read(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    yield from _check_batch(response, mount)


def _check_list(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    if isinstance(response, dict) and isinstance(response.get("data"), list):
        for batch in response["data"]:
            yield from _check_batch(batch, mount)


def _check_results(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    if isinstance(response, dict):
        yield from _check_batch(response.get("batch"), mount)


# -- Deepvue: request ids from submits and status polls -----------------------------------------


def _deepvue_submit(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    if isinstance(response, dict) and isinstance(response.get("request_id"), str):
        stamp = _int(response.get("timestamp"))
        created = datetime.fromtimestamp(stamp / 1000, UTC) if stamp is not None else entry.time
        yield Seen(
            "batch",
            response["request_id"],
            status=_str(response.get("message")) or "submitted",
            created_at=format_iso(created),
        )


def _deepvue_status(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    data = response.get("data") if isinstance(response, dict) else None
    if isinstance(data, dict) and isinstance(data.get("request_id"), str):
        url = _str(data.get("batch_output_file_url"))
        yield Seen(
            "batch",
            data["request_id"],
            status=_str(data.get("message")),
            links={"output file": url} if url else {},
        )


# -- Passcreator: processes from bulk creates and updates, and their polls ----------------------


def _passcreator_submit(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    bulk = entry.operation == "update_passes" or (
        isinstance(request, dict) and isinstance(request.get("data"), list)
    )
    data = response.get("data") if isinstance(response, dict) else None
    if bulk and isinstance(data, dict) and isinstance(data.get("identifier"), str):
        identifier = data["identifier"]
        yield Seen(
            "process",
            identifier,
            status="submitted",
            created_at=format_iso(entry.time),
            links={"process": f"{mount}/api/v3/process/{identifier}"},
        )


def _passcreator_process(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    data = response.get("data") if isinstance(response, dict) else None
    identifier = entry.local_path.rstrip("/").rsplit("/", 1)[-1]
    if isinstance(data, dict) and identifier:
        yield Seen(
            "process",
            identifier,
            status=_str(data.get("status")),
            current=_int(data.get("current")),
            total=_int(data.get("total")),
            created_at=_str(data.get("createdOn")),
            links={"process": f"{mount}/api/v3/process/{identifier}"},
        )


# -- HelloAtlas: batches from multiuploads, documents done from pages of extracts ---------------


def _helloatlas_upload(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    if isinstance(response, list) and response and isinstance(response[0], dict):
        batch_id = _str(response[0].get("batch_id"))
        if batch_id:
            yield Seen(
                "batch",
                batch_id,
                status="submitted",
                total=len(response),
                created_at=format_iso(entry.time),
                links={"extracts": f"{mount}/v1/bulk/extracts?batch_id={batch_id}"},
            )


def _helloatlas_extracts(entry: Entry, request: Any, response: Any, mount: str) -> Iterator[Seen]:
    batch_id = (parse_qs(entry.query).get("batch_id") or [""])[0]
    if not batch_id or not isinstance(response, dict):
        return
    total = _int(response.get("total_items"))
    data = response.get("data")
    current = None
    # One page holds every document: how many are extracted is known.
    if response.get("total_pages") == 1 and isinstance(data, list):
        current = sum(1 for d in data if isinstance(d, dict) and d.get("file_data"))
    status = None
    if current is not None and total is not None:
        status = "extracted" if current >= total else "processing"
    yield Seen("batch", batch_id, status=status, current=current, total=total)


OBSERVERS: dict[tuple[str, str], Observer] = {
    ("check", "upload_batch_file"): _check_upload,
    ("check", "create_batch"): _check_create,
    ("check", "get_batch"): _check_read,
    ("check", "cancel_batch"): _check_read,
    ("check", "list_batches"): _check_list,
    ("check", "get_batch_results"): _check_results,
    ("deepvue", "submit_upi_basic_batch"): _deepvue_submit,
    ("deepvue", "get_batch_processing_status"): _deepvue_status,
    ("passcreator", "create_pass"): _passcreator_submit,
    ("passcreator", "update_passes"): _passcreator_submit,
    ("passcreator", "get_process"): _passcreator_process,
    ("helloatlas", "bulk_multiupload"): _helloatlas_upload,
    ("helloatlas", "get_bulk_extracts"): _helloatlas_extracts,
}
