"""Deterministic results for Deepvue's UPI batch output file.

Row ``i`` of batch ``request_id`` is a pure function of ``(seed, request_id, i)`` and the
row's input, so the output file is the same however often it is downloaded. Magic VPAs (the
part before ``@``) steer the outcome; see ``MAGIC`` and docs/providers/deepvue.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from simulator.ids import IdFactory

if TYPE_CHECKING:
    from faker import Faker

__all__ = ["MAGIC", "OUTPUT_COLUMNS", "Row", "output_rows"]

OUTPUT_COLUMNS = (
    "vpa",
    "name",
    "status",
    "account_exists",
    "name_at_bank",
    "name_at_bank_cleaned",
    "message",
)

# The local part of a VPA (before "@") starting with one of these steers the row or batch.
MAGIC = {
    "invalid": "the row fails with status FAILED and message 'Invalid VPA'",
    "noaccount": "the VPA has no account: account_exists false, empty names",
    "fail": "the row fails with status FAILED and message 'Source Unavailable'",
    "slow": "the whole batch takes SLOW_EXTRA_SECONDS longer to complete",
}
SLOW_EXTRA_SECONDS = 600.0
VPA_PATTERN = re.compile(r"^[A-Za-z0-9.\-_]{2,256}@[A-Za-z][A-Za-z0-9]{1,63}$")


@dataclass(frozen=True, slots=True)
class Row:
    """One input row of a batch file."""

    vpa: str
    name: str


def is_slow(row: Row) -> bool:
    return row.vpa.lower().startswith("slow")


@cache
def _faker() -> Faker:
    from faker import Faker  # imported on first use: it is slow to load

    return Faker("en_IN")


def output_rows(ids: IdFactory, request_id: str, rows: Sequence[Row]) -> Iterator[dict[str, str]]:
    """The output file's rows: the input columns followed by the verification result."""
    for index, row in enumerate(rows):
        yield {"vpa": row.vpa, "name": row.name, **_result(ids, request_id, index, row)}


def _result(ids: IdFactory, request_id: str, index: int, row: Row) -> dict[str, str]:
    local = row.vpa.split("@", 1)[0].lower()
    if local.startswith("invalid") or not VPA_PATTERN.match(row.vpa):
        return _failed("Invalid VPA")
    if local.startswith("fail"):
        return _failed("Source Unavailable")
    if local.startswith("noaccount"):
        return {
            "status": "SUCCESS",
            "account_exists": "false",
            "name_at_bank": "",
            "name_at_bank_cleaned": "",
            "message": "VPA does not exist",
        }
    name = row.name.strip()
    if not name:
        fake = _faker()
        fake.seed_instance(ids.derive_int(request_id, index))
        name = fake.name()
    cleaned = " ".join(part.capitalize() for part in name.split())
    return {
        "status": "SUCCESS",
        "account_exists": "true",
        "name_at_bank": name.upper(),
        "name_at_bank_cleaned": cleaned,
        "message": "VPA is valid",
    }


def _failed(message: str) -> dict[str, str]:
    return {
        "status": "FAILED",
        "account_exists": "",
        "name_at_bank": "",
        "name_at_bank_cleaned": "",
        "message": message,
    }


SEED_COMPLETED_ROWS = (
    Row("rahul.sharma@okaxis", "Rahul Sharma"),
    Row("priya.nair@oksbi", "Priya Nair"),
    Row("9876543210@paytm", ""),
    Row("noaccount.kumar@ybl", "Anil Kumar"),
    Row("invalid-vpa", "Sunita Rao"),
)
SEED_IN_PROGRESS_ROWS = tuple(Row(f"customer{n:03d}@okicici", "") for n in range(1, 26))
