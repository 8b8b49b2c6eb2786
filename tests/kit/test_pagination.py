"""simulator.kit.pagination, which HelloAtlas's extracts use (provider-agnostic unit tests)."""

from __future__ import annotations

import pytest

from simulator.kit.pagination import (
    PageParamError,
    PageRequest,
    PageRules,
    PageWindow,
    parse_page_request,
)

RULES = PageRules(default_per_page=50, max_per_page=50)


@pytest.mark.parametrize(
    ("page", "per_page", "total", "indices", "pages", "has_next", "has_prev"),
    [
        (1, 50, 1, range(1), 1, False, False),
        (1, 50, 120, range(50), 3, True, False),
        (3, 50, 120, range(100, 120), 3, False, True),
        (4, 50, 120, range(0), 3, False, True),
        (1, 10, 0, range(0), 0, False, False),
        (2, 10, 20, range(10, 20), 2, False, True),
        (10**17, 50, 1_000_000, range(0), 20_000, False, True),
    ],
)
def test_page_window_arithmetic(
    page: int,
    per_page: int,
    total: int,
    indices: range,
    pages: int,
    has_next: bool,
    has_prev: bool,
) -> None:
    window = PageWindow(page, per_page, total)
    assert window.indices() == indices
    assert (window.total_pages, window.has_next, window.has_prev) == (pages, has_next, has_prev)


def test_parse_page_request_defaults_and_clamps() -> None:
    assert parse_page_request(None, None, RULES) == PageRequest(1, 50)
    assert parse_page_request("3", "7", RULES) == PageRequest(3, 7)
    assert parse_page_request("007", "500", RULES) == PageRequest(7, 50)


@pytest.mark.parametrize(
    ("page", "per_page", "param"),
    [
        ("0", None, "page"),
        ("-1", None, "page"),
        ("+1", None, "page"),
        ("1_000", None, "page"),
        ("\u0661", None, "page"),
        ("1" * 19, None, "page"),
        (None, "0", "per_page"),
        (None, "", "per_page"),
    ],
)
def test_parse_page_request_rejects_unusable_values(
    page: str | None, per_page: str | None, param: str
) -> None:
    with pytest.raises(PageParamError) as caught:
        parse_page_request(page, per_page, RULES)
    assert caught.value.param == param
    assert caught.value.reason == "must be a positive integer"


def test_parse_page_request_reject_rule_refuses_above_max() -> None:
    rules = PageRules(default_per_page=20, max_per_page=50, above_max="reject")
    assert parse_page_request(None, None, rules) == PageRequest(1, 20)
    with pytest.raises(PageParamError, match="per_page must be between 1 and 50"):
        parse_page_request(None, "51", rules)
