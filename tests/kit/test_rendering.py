"""orjson's floats where they render as json.dumps does, and the cached ISO formatter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from simulator.clock import format_iso
from simulator.kit.rendering import FastJSONResponse, floats_render_alike


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_render_alike_only_when_the_bytes_agree(value: float) -> None:
    alike = orjson.dumps(value) == json.dumps(value).encode()
    assert floats_render_alike([value, 1, "x", True, None]) is alike


def test_floats_render_alike_refuses_what_orjson_writes_otherwise() -> None:
    assert not floats_render_alike([1.0, 1e-7])  # orjson: 1e-7; json.dumps: 1e-07
    assert not floats_render_alike([float("nan")])
    assert not floats_render_alike([float("inf")])
    assert floats_render_alike([1.0, 0.5, 123.25, 0.7])


@given(st.dictionaries(st.text(), st.floats(allow_nan=False, allow_infinity=False)))
def test_a_body_whose_floats_render_alike_is_byte_identical(body: dict[str, float]) -> None:
    if floats_render_alike(body.values()):
        assert FastJSONResponse(body).body == json.dumps(
            body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")


FIRST = datetime(1970, 1, 2)  # noqa: DTZ001 - hypothesis takes naive bounds
LAST = datetime(9000, 12, 30)  # noqa: DTZ001


@given(
    st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(UTC)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_format_iso_is_isoformat_in_utc(instant: datetime, minutes: int) -> None:
    expected = instant.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    shifted = instant.astimezone(timezone(timedelta(minutes=minutes)))
    assert format_iso(instant) == expected
    assert format_iso(shifted) == expected  # the same instant in another zone, cached or not
