"""Passcreator: the raw API key in ``Authorization``, no token exchange and no Bearer prefix.

A bulk create (``POST /api/v3/pass`` with ``data`` an array) or update (``PATCH /api/v3/pass``)
answers with a process identifier; ``GET /api/v3/process/{identifier}`` is polled until it is
"finished" or "finished with errors". ``GET /api/v3/pass?query=`` pages while
``responseMetaData.page.next`` is set. Keys do not expire and nothing is one-shot.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
from hypothesis import strategies as st

from contracts.checks import Behaviour, Paging, Polling
from contracts.clients.passcreator import TERMINAL, encode_query
from contracts.strategies import ScenarioSpace
from contracts.verify import Target

Entry = Mapping[str, Any]
_PROCESS = re.compile(r"/api/v3/process/([^/]+)$")


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    return {"Authorization": str(credentials["api_key"])}


def probe(client: httpx.Client, headers: Mapping[str, str]) -> httpx.Response:
    """One cheap authenticated call, so ``bulksim verify`` can tell refused credentials (401)
    and a wrong base URL (404) from drift before it starts."""
    return client.get("/api/v3/pass", params={"pageSize": 1}, headers=headers)


def _body(entry: Entry) -> dict[str, Any]:
    body = entry["response"]["body"]
    return body if isinstance(body, dict) else {}


def _process_id(entry: Entry) -> str | None:
    match = _PROCESS.search(entry["path"])
    return match.group(1) if match else None


def _terminal(entry: Entry) -> bool:
    data = _body(entry).get("data")
    return isinstance(data, dict) and data.get("status") in TERMINAL


def _param(entry: Entry, name: str, default: str) -> str:
    values: list[str] = parse_qs(entry["query"]).get(name, [default])
    return values[0]


def _listing(entry: Entry) -> str:
    """One listing is one query at one page size."""
    return f"query={_param(entry, 'query', '')} pageSize={_param(entry, 'pageSize', '')}"


def _page(entry: Entry) -> int:
    page = _param(entry, "page", "1")
    return int(page) if page.isdigit() else 1


def _has_next(entry: Entry) -> bool:
    meta = _body(entry).get("responseMetaData")
    page = meta.get("page") if isinstance(meta, dict) else None
    return isinstance(page, dict) and bool(page.get("next"))


BEHAVIOUR = Behaviour(
    polling=[Polling("get_process", _process_id, _terminal)],
    paging=[Paging("list_passes", _listing, _page, _has_next, lambda e: _page(e) + 1)],
)


# -- fuzzing -----------------------------------------------------------------------------------

UNKNOWN_TEMPLATE = "00000000-0000-4000-8000-000000000000"
TAKEN_USER_ID = "member-0001"  # a seeded pass holds it
FUZZ_GROUP = {"field": "batch", "operator": "equals", "value": "fuzz"}
FAIL_MESSAGE = "Barcode value already printed"

# What one input item is; ``render`` makes the item, ``outcome`` says how it should end.
KINDS = ("plain", "plain", "plain", "anonymous", "fail", "unknown-template", "taken-id", "locked")


def _item(kind: str, index: int, template: str) -> dict[str, object]:
    item: dict[str, object] = {
        "templateId": template,
        "userProvidedId": f"fz-{index}",
        "firstname": f"Guest {index}",
        "batch": "fuzz",
    }
    if kind == "anonymous":
        del item["userProvidedId"]
    elif kind == "fail":
        item["barcodeValue"] = f"fail:{FAIL_MESSAGE}"
    elif kind == "unknown-template":
        item["templateId"] = UNKNOWN_TEMPLATE
    elif kind == "taken-id":
        item.update(userProvidedId=TAKEN_USER_ID, enforceUniqueUserProvidedId=True)
    elif kind == "locked":
        item["userProvidedId"] = f"locked:Pass {index} is locked"
    return item


def render(kinds: Sequence[str], credentials: Mapping[str, Any]) -> list[dict[str, object]]:
    """The bulk create a scenario's items stand for, on the template of ``credentials``
    (the test account's, as ``/_sim/providers`` lists it)."""
    template = str(credentials["template_id"])
    return [_item(kind, index, template) for index, kind in enumerate(kinds)]


def create_failure(kind: str, options: Mapping[str, object]) -> str | None:
    """The message an item of ``kind`` fails with under ``options``, or None if it succeeds."""
    if kind == "fail":
        return FAIL_MESSAGE
    if kind == "unknown-template" and options.get("known_templates_only", True):
        return f"Template {UNKNOWN_TEMPLATE} not found."
    if kind == "taken-id":
        return f"userProvidedId {TAKEN_USER_ID} is already in use."
    return None


SPACE = ScenarioSpace(
    options={
        "items_per_second": st.floats(0.5, 200, allow_nan=False),
        "known_templates_only": st.booleans(),
    },
    items=st.lists(st.sampled_from(KINDS), min_size=1, max_size=20),
    operations=("create_pass", "update_passes", "get_process", "list_passes"),
    transient_errors=("TooManyRequests", "InternalServerError"),
    render_with_credentials=render,
)


# -- bulksim verify ----------------------------------------------------------------------------

CREDENTIAL_KEYS = ("api_key", "template_id")
SEED_PROCESS = "627d21f7-e1a0-4085-84cb-130906cd097c"
UNKNOWN_PROCESS = "00000000-0000-4000-8000-000000000000"


def _expect_error(target: Target, step: str, response: httpx.Response, status: int) -> Any:
    """The v3 error envelope with ``status``: success false, count 0, data []."""
    body = response.json() if "json" in response.headers.get("content-type", "") else None
    target.expect(
        step,
        response.status_code == status
        and isinstance(body, dict)
        and body.get("statusCode") == status
        and body.get("success") is False
        and body.get("count") == 0
        and body.get("data") == []
        and bool(body.get("errors")),
        f"answered {response.status_code} {response.text[:200]}, not the v3 {status} envelope",
    )
    return body


def _poll(target: Target, step: str, identifier: str, headers: Mapping[str, str]) -> Any:
    """Poll until terminal: current never falls, never passes total, and reaches it."""
    path = f"/api/v3/process/{identifier}"
    deadline = time.monotonic() + target.timeout
    seen = -1
    while True:
        poll = target.call(step, "GET", path, headers=headers)
        target.expect(step, poll.status_code == 200, f"answered {poll.status_code}, not 200")
        data = poll.json()["data"]
        current, total, status = data["current"], data["total"], data["status"]
        target.expect(step, current >= seen, f"current went back from {seen} to {current}")
        target.expect(step, current <= total, f"current {current} is past total {total}")
        seen = current
        if status in TERMINAL:
            target.expect(step, current == total, f"{status!r} at {current}/{total}")
            return data
        target.expect(
            step, status == "in progress", f"status {status!r} is neither in progress nor terminal"
        )
        target.expect(step, time.monotonic() < deadline, f"not terminal within {target.timeout:g}s")
        target.wait(1 if target.is_bulksim else 5)


def lifecycle(target: Target) -> None:
    """auth errors → unknown process → bulk create → poll → read the passes → bulk update."""
    key = str(target.credentials["api_key"])
    template = str(target.credentials["template_id"])
    headers = {"Authorization": key}

    anonymous = target.call("poll without a key", "GET", f"/api/v3/process/{SEED_PROCESS}")
    _expect_error(target, "poll without a key", anonymous, 401)
    bearer = target.call(
        "poll with a Bearer-prefixed key",
        "GET",
        f"/api/v3/process/{SEED_PROCESS}",
        headers={"Authorization": f"Bearer {key}"},
    )
    _expect_error(target, "poll with a Bearer-prefixed key", bearer, 401)
    unknown = target.call(
        "poll an unknown process", "GET", f"/api/v3/process/{UNKNOWN_PROCESS}", headers=headers
    )
    body = _expect_error(target, "poll an unknown process", unknown, 404)
    target.expect(
        "poll an unknown process",
        body["errors"] == ["Object not found"],
        f"errors are {body['errors']!r}, not ['Object not found']",
    )

    run = uuid.uuid4().hex[:12]  # this run's passes, apart from any earlier run's
    items = [
        {"templateId": template, "userProvidedId": f"verify-{run}-{n}", "firstname": f"Check {n}"}
        for n in range(3)
    ]
    create = target.call(
        "bulk create", "POST", "/api/v3/pass", json={"data": items}, headers=headers
    )
    target.expect("bulk create", create.status_code == 200, f"answered {create.status_code}")
    process = create.json()["data"]["identifier"]

    done = _poll(target, "poll the bulk create", process, headers)
    target.expect(
        "poll the bulk create",
        done["total"] == len(items) and done["status"] == "finished" and done["errors"] is None,
        f"ended {done['status']!r} {done['current']}/{done['total']}, errors {done['errors']!r}",
    )

    ids = [str(item["userProvidedId"]) for item in items]
    selected = {"groups": [[{"field": "userProvidedId", "operator": "equals", "value": ids}]]}
    listing = target.call(
        "find the created passes",
        "GET",
        "/api/v3/pass",
        params={"query": encode_query(selected)},
        headers=headers,
    )
    target.expect(
        "find the created passes", listing.status_code == 200, f"answered {listing.status_code}"
    )
    found = {p["userProvidedId"]: p for p in listing.json()["data"]}
    target.expect(
        "find the created passes",
        sorted(found) == sorted(ids),
        f"the query found {sorted(found)}, not {sorted(ids)}",
    )
    for item in items:
        made = found[item["userProvidedId"]]
        one = target.call(
            "read a created pass", "GET", f"/api/v3/pass/{made['identifier']}", headers=headers
        )
        target.expect("read a created pass", one.status_code == 200, f"answered {one.status_code}")
        data = one.json()["data"]
        target.expect(
            "read a created pass",
            data["userProvidedId"] == item["userProvidedId"]
            and data.get("firstname") == item["firstname"]
            and data["templateId"] == template,
            f"pass {made['identifier']} reads {data!r}, not what was created",
        )

    update = target.call(
        "bulk update",
        "PATCH",
        "/api/v3/pass",
        json={"filter": {"query": selected}, "data": {"verifiedRun": run}},
        headers=headers,
    )
    target.expect("bulk update", update.status_code == 200, f"answered {update.status_code}")
    updated = _poll(target, "poll the bulk update", update.json()["data"]["identifier"], headers)
    target.expect(
        "poll the bulk update",
        updated["total"] == len(items) and updated["status"] == "finished",
        f"ended {updated['status']!r} {updated['current']}/{updated['total']}",
    )
    first = found[ids[0]]["identifier"]
    after = target.call("read an updated pass", "GET", f"/api/v3/pass/{first}", headers=headers)
    target.expect(
        "read an updated pass",
        after.status_code == 200 and after.json()["data"].get("verifiedRun") == run,
        f"pass {first} does not show the update: {after.text[:300]}",
    )
