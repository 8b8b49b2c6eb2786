"""orjson's floats where they render as json.dumps does, its responses made as Starlette's, and
the cached ISO formatter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

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


@given(
    st.sampled_from([100, 200, 201, 202, 204, 304, 400, 404, 429, 500, 503]),
    st.dictionaries(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
def test_a_response_gets_the_headers_and_body_starlette_gives_it(
    status: int, body: dict[str, int]
) -> None:
    ours, theirs = FastJSONResponse(body, status), JSONResponse(body, status)
    assert (ours.status_code, ours.raw_headers, ours.body, ours.background) == (
        theirs.status_code,
        theirs.raw_headers,
        theirs.body,
        theirs.background,
    )
    assert ours.media_type == theirs.media_type


def test_a_response_with_headers_of_its_own_is_made_as_starlette_makes_it() -> None:
    ours = FastJSONResponse({"a": 1}, 429, headers={"Retry-After": "3"}, media_type="x/json")
    theirs = JSONResponse({"a": 1}, 429, headers={"Retry-After": "3"}, media_type="x/json")
    assert ours.raw_headers == theirs.raw_headers
    assert ours.raw_headers[0] == (b"retry-after", b"3")


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
