"""A reference Passcreator client: bulk create or update passes, poll the process, check.

Passcreator's bulk endpoints answer at once with a process identifier; the work happens
afterwards. ``GET /api/v3/process/{identifier}`` reports ``current`` of ``total`` items done and
a status, "in progress" until it is "finished" or "finished with errors"; failed items are
listed in ``data.errors``, keyed by the item's userProvidedId or, without one, by its array
index (for a bulk update: by userProvidedId, else by pass identifier).

Retrying a submit. Passcreator has no idempotency key, and a bulk answer is the only place its
process identifier is given. This client retries a submit after a 429, a 5xx, a dropped
connection or a cut-off body, like any other call: giving up would leave the caller with
neither the work done nor an identifier to poll. The cost is that a retry may duplicate work
when the first attempt did reach Passcreator (a connection cut after the request was sent, a
200 whose body was cut off, a 5xx from a proxy in front of a server that took the request).
A 429 or a refused connection was certainly not processed; anything else might have been, and
the result says so (``BulkResult.maybe_duplicated``), so a caller can look for duplicates by
userProvidedId (or give items a userProvidedId with ``enforceUniqueUserProvidedId: true``, so a
duplicate submit fails item by item instead of creating passes twice). A duplicated bulk update
is harmless: it sets the same values twice. In bulksim every fault strikes before the request
reaches the provider, so there a retried submit never duplicates anything.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from contracts.clients.base import (
    Now,
    RetryPolicy,
    Sleep,
    call_with_retries,
    system_now,
    system_sleep,
)

__all__ = [
    "IN_PROGRESS",
    "TERMINAL",
    "BulkResult",
    "Found",
    "PasscreatorClient",
    "PasscreatorError",
    "encode_query",
    "item_key",
]

IN_PROGRESS = "in progress"
TERMINAL = ("finished", "finished with errors")
# The Query Language takes at most 100 values in one condition.
MAX_VALUES_PER_CONDITION = 100


class PasscreatorError(RuntimeError):
    """Passcreator answered with an error a retry will not fix (its ``errors`` are kept)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.messages: list[str] = []
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            self.messages = [str(m) for m in body["errors"]]
        detail = "; ".join(self.messages) or response.text[:300]
        super().__init__(f"Passcreator answered {response.status_code}: {detail}")


def item_key(item: object, index: int) -> str:
    """How a failed create item is keyed in ``data.errors``: its userProvidedId, else its
    position in the bulk."""
    if isinstance(item, Mapping):
        user_id = item.get("userProvidedId")
        if isinstance(user_id, str) and user_id:
            return user_id
    return str(index)


@dataclass(frozen=True)
class BulkResult:
    """A bulk process that reached a terminal status.

    ``errors`` maps each failed item's key to its message (empty when none failed).
    ``maybe_duplicated`` is true when the submit was retried after a failure that may have
    reached Passcreator, so a second process may be doing the same work (see the module).
    """

    identifier: str
    status: str
    current: int
    total: int
    errors: dict[str, str] = field(default_factory=dict)
    maybe_duplicated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "finished" and not self.errors

    def failed_items(self, items: Sequence[object]) -> dict[int, str]:
        """For a bulk create of ``items``: the position of each failed item, with its message.

        An item is matched by its key; two items that share a key (the same userProvidedId,
        or a userProvidedId that reads like another item's index) share its message.
        """
        return {
            index: self.errors[key]
            for index, item in enumerate(items)
            if (key := item_key(item, index)) in self.errors
        }

    def succeeded_items(self, items: Sequence[object]) -> list[int]:
        failed = self.failed_items(items)
        return [index for index in range(len(items)) if index not in failed]


@dataclass(frozen=True)
class Found:
    """What a check of a bulk create found: each created item's pass, by position.

    Passcreator does not say which passes a bulk made; they are looked up by userProvidedId.
    An item without one cannot be looked up (``unverifiable``); a succeeded item whose
    userProvidedId matches no pass is ``missing``.
    """

    passes: dict[int, dict[str, Any]]
    missing: list[int]
    unverifiable: list[int]


@dataclass
class _Attempts:
    """Wraps a submit's ``send`` to tell whether a failed attempt may have been processed."""

    send: Callable[[], httpx.Response]
    ambiguous: bool = False

    def __call__(self) -> httpx.Response:
        try:
            response = self.send()
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise  # never reached the provider
        except httpx.TransportError:
            self.ambiguous = True
            raise
        if response.status_code >= 500 or (
            response.status_code < 300 and not _has(response, "identifier")
        ):
            self.ambiguous = True
        return response


@dataclass
class PasscreatorClient:
    """Creates or updates passes in bulk the way Passcreator's v3 API describes.

    The raw API key goes in ``Authorization`` (no Bearer prefix; keys do not expire). Every
    call is retried on 429 (after Retry-After), 5xx, dropped connections and cut-off bodies;
    a process is polled with exponential backoff until it is terminal, and not once more.
    ``started`` lists each process identifier as soon as Passcreator gives it, so a caller
    whose polling failed can resume with :meth:`wait`.
    """

    http: httpx.Client
    api_key: str
    sleep: Sleep = system_sleep
    now: Now = system_now
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval: float = 2.0
    max_poll_interval: float = 60.0
    timeout: float = 6 * 3600.0
    page_size: int = 100
    started: list[str] = field(default_factory=list)

    # -- the whole flow ------------------------------------------------------------------------

    def create_passes(self, items: Sequence[Mapping[str, object]]) -> BulkResult:
        """Bulk-create ``items`` (each with a ``templateId``) and wait for the process."""
        identifier, duplicated = self.submit_create(items)
        return self._with(self.wait(identifier), duplicated)

    def update_passes(self, query: Mapping[str, object], data: Mapping[str, object]) -> BulkResult:
        """Apply ``data`` to every pass ``query`` (Query Language) selects, and wait."""
        identifier, duplicated = self.submit_update(query, data)
        return self._with(self.wait(identifier), duplicated)

    # -- the steps -----------------------------------------------------------------------------

    def submit_create(self, items: Sequence[Mapping[str, object]]) -> tuple[str, bool]:
        """Start a bulk create; returns the process identifier and whether the submit may
        have been duplicated."""
        return self._submit("POST", {"data": [dict(item) for item in items]})

    def submit_update(
        self, query: Mapping[str, object], data: Mapping[str, object]
    ) -> tuple[str, bool]:
        return self._submit("PATCH", {"filter": {"query": dict(query)}, "data": dict(data)})

    def process(self, identifier: str) -> dict[str, Any]:
        """One poll: the process's ``current``, ``total``, ``createdOn``, ``status``, ``errors``."""
        response = self._call("GET", f"/api/v3/process/{identifier}", intact=_is_process)
        data: dict[str, Any] = response.json()["data"]
        return data

    def wait(self, identifier: str) -> BulkResult:
        """Poll until the process is terminal; any other status means it is still working."""
        interval = self.poll_interval
        deadline = self.now() + self.timeout
        while True:
            data = self.process(identifier)
            if data["status"] in TERMINAL:
                return BulkResult(
                    identifier,
                    str(data["status"]),
                    int(data["current"]),
                    int(data["total"]),
                    {str(k): str(v) for k, v in (data.get("errors") or {}).items()},
                )
            if self.now() + interval > deadline:
                raise TimeoutError(
                    f"process {identifier} still {data['status']!r} at {data['current']}"
                    f"/{data['total']} after {self.timeout:g}s"
                )
            self.sleep(interval)
            interval = min(self.max_poll_interval, interval * 1.5)

    def get_pass(self, identifier: str) -> dict[str, Any]:
        response = self._call("GET", f"/api/v3/pass/{identifier}", intact=_is_pass)
        found: dict[str, Any] = response.json()["data"]
        return found

    def find_passes(self, query: Mapping[str, object]) -> Iterator[dict[str, Any]]:
        """Every pass ``query`` selects, a page at a time, to the last page.

        ``responseMetaData.page.next`` says whether another page follows; the next page is
        asked for by number on this client's own base URL, so the API key is never sent to
        a host named in a response.
        """
        page = 1
        while True:
            params = {
                "query": encode_query(query),
                "page": str(page),
                "pageSize": str(self.page_size),
            }
            response = self._call("GET", "/api/v3/pass", params=params, intact=_is_list)
            body = response.json()
            yield from body["data"]
            meta = body.get("responseMetaData") or {}
            if not (meta.get("page") or {}).get("next") or not body["data"]:
                return
            page += 1

    def check_created(self, items: Sequence[Mapping[str, object]], result: BulkResult) -> Found:
        """Look up the pass each succeeded item made, by userProvidedId.

        When several passes share a userProvidedId (an earlier run made one too), the most
        recently created is taken.
        """
        wanted: dict[str, list[int]] = {}
        unverifiable = []
        for index in result.succeeded_items(items):
            user_id = items[index].get("userProvidedId")
            if isinstance(user_id, str) and user_id:
                wanted.setdefault(user_id, []).append(index)
            else:
                unverifiable.append(index)
        by_user_id: dict[str, dict[str, Any]] = {}
        names = list(wanted)
        for start in range(0, len(names), MAX_VALUES_PER_CONDITION):
            chunk = names[start : start + MAX_VALUES_PER_CONDITION]
            condition = {"field": "userProvidedId", "operator": "equals", "value": chunk}
            for found in self.find_passes({"groups": [[condition]]}):
                user_id = found.get("userProvidedId")
                best = by_user_id.get(user_id) if isinstance(user_id, str) else None
                if isinstance(user_id, str) and (
                    best is None or str(found["createdOn"]) >= str(best["createdOn"])
                ):
                    by_user_id[user_id] = found
        passes = {
            index: by_user_id[user_id]
            for user_id, indexes in wanted.items()
            if user_id in by_user_id
            for index in indexes
        }
        missing = sorted(i for ids in wanted.values() for i in ids if i not in passes)
        return Found(passes, missing, unverifiable)

    # -- plumbing ------------------------------------------------------------------------------

    def _submit(self, method: str, body: Mapping[str, object]) -> tuple[str, bool]:
        # Retried like any call; see the module docstring for why, and what it may cost.
        attempts = _Attempts(
            lambda: self.http.request(method, "/api/v3/pass", json=body, headers=self._headers())
        )
        response = call_with_retries(attempts, self.sleep, self.retry, intact=_is_started)
        if response.status_code >= 300:
            raise PasscreatorError(response)
        identifier = str(response.json()["data"]["identifier"])
        self.started.append(identifier)
        return identifier, attempts.ambiguous

    def _call(
        self,
        method: str,
        path: str,
        *,
        intact: Callable[[httpx.Response], bool],
        **kwargs: Any,
    ) -> httpx.Response:
        response = call_with_retries(
            lambda: self.http.request(method, path, headers=self._headers(), **kwargs),
            self.sleep,
            self.retry,
            intact=intact,
        )
        if response.status_code >= 300:
            raise PasscreatorError(response)
        return response

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self.api_key}

    @staticmethod
    def _with(result: BulkResult, duplicated: bool) -> BulkResult:
        if not duplicated:
            return result
        return BulkResult(
            result.identifier, result.status, result.current, result.total, result.errors, True
        )


def encode_query(query: Mapping[str, object]) -> str:
    """``?query=``: the Query Language object as base64url-encoded JSON, unpadded."""
    text = json.dumps(query, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def _data(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("data") if isinstance(body, dict) else None


def _has(response: httpx.Response, *keys: str) -> bool:
    data = _data(response)
    return isinstance(data, dict) and all(k in data for k in keys)


def _is_started(response: httpx.Response) -> bool:
    return _has(response, "identifier")


def _is_process(response: httpx.Response) -> bool:
    return _has(response, "current", "total", "status")


def _is_pass(response: httpx.Response) -> bool:
    return _has(response, "identifier")


def _is_list(response: httpx.Response) -> bool:
    return isinstance(_data(response), list)
