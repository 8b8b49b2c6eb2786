"""kit.provider.query_of maps a query exactly as Starlette's ``request.query_params``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from simulator.kit.provider import query_of

PIECES = st.sampled_from(["a", "b", "page", "=", "&", "%", "%20", "%zz", "+", " ", "é", "", "1"])
QUERIES = st.lists(PIECES, max_size=12).map("".join)


def request_for(query: str) -> Request:
    raw = query.encode("utf-8")
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": raw})


@given(QUERIES)
def test_query_of_is_query_params(query: str) -> None:
    assert query_of(request_for(query)) == dict(request_for(query).query_params)


def test_query_of_keeps_blank_values_and_the_last_of_a_repeated_name() -> None:
    assert query_of(request_for("a=1&b&a=2&&c=")) == {"a": "2", "b": "", "c": ""}
    assert query_of(request_for("a=x%20y+z")) == {"a": "x y z"}
