"""Deterministic data for Passcreator: generated barcode values, pass links, the seeded examples,
and the magic values that steer an outcome (see ``MAGIC`` and docs/providers/passcreator.md).
"""

from __future__ import annotations

from simulator.ids import IdFactory

__all__ = [
    "FAIL_PREFIX",
    "LOCKED_PREFIX",
    "MAGIC",
    "SEED_PASSES",
    "SEED_PROCESS",
    "fail_text",
    "generated_barcode",
    "locked_text",
    "pass_links",
]

# A create item whose barcodeValue, or any additional property, is "fail:<message>" fails with
# <message>; update data holding such a value fails every pass it selects.
FAIL_PREFIX = "fail:"
# A pass whose userProvidedId is "locked:<message>" fails every update with <message>.
LOCKED_PREFIX = "locked:"
MAGIC = {
    FAIL_PREFIX: "a create item (barcodeValue or an additional property) or update data with "
    "this value prefix fails with the text after it; the process finishes with errors",
    LOCKED_PREFIX: "a pass whose userProvidedId has this prefix fails every update with the "
    "text after it",
}

SEED_PROCESS = "627d21f7-e1a0-4085-84cb-130906cd097c"
SEED_PROCESS_TOTAL = 1000
SEED_PROCESS_DONE = 250

# The two passes of the API v3 general-structure page's bulk example, in the test account.
SEED_PASSES: tuple[dict[str, str | int], ...] = (
    {
        "identifier": "1d2ffd3d-bf5c-4c11-964f-018aee016dda",
        "userProvidedId": "member-0001",
        "barcodeValue": "5b55c8058e3c77.10425272",
        "firstname": "David",
        "age": 30,
        "country": "Germany",
    },
    {
        "identifier": "64d55135-8a4c-afb0-e107-4d17d771b9c5",
        "userProvidedId": "member-0002",
        "barcodeValue": "552168de589ac1.65142085",
        "firstname": "Ray",
        "age": 31,
        "country": "Germany",
    },
)


def generated_barcode(ids: IdFactory, identifier: str) -> str:
    """A barcode value in the shape of Passcreator's generated ids: ``5b55c8058e3c77.10425272``."""
    rng = ids.derive("barcode", identifier)
    head = "".join(rng.choices("0123456789abcdef", k=14))
    tail = "".join(rng.choices("0123456789", k=8))
    return f"{head}.{tail}"


def pass_links(public_base: str, identifier: str) -> dict[str, str]:
    """Where a pass holder downloads the pass; the simulator does not serve these pages."""
    page = f"{public_base.rstrip('/')}/passinstance/{identifier}"
    return {"downloadPage": page, "iPhoneUri": f"{page}/apple", "androidUri": f"{page}/google"}


def fail_text(value: object) -> str | None:
    """The text after ``fail:`` when ``value`` is that magic value (may be empty), else None."""
    if isinstance(value, str) and value.startswith(FAIL_PREFIX):
        return value.removeprefix(FAIL_PREFIX).strip()
    return None


def locked_text(user_provided_id: object) -> str | None:
    """The text after ``locked:`` when a userProvidedId is that magic value, else None."""
    if isinstance(user_provided_id, str) and user_provided_id.startswith(LOCKED_PREFIX):
        return user_provided_id.removeprefix(LOCKED_PREFIX).strip()
    return None
