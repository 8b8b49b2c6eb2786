"""Page-number pagination: ``page`` / ``per_page`` parsing and the arithmetic of one page.

Providers that page with a 1-based page number and a page size share this; each maps
:class:`PageParamError` onto its own documented error body::

    try:
        request = parse_page_request(query.get("page"), query.get("per_page"), rules)
    except PageParamError as exc:
        raise AcmeBadRequest(f"{exc.param} {exc.reason}") from None
    window = PageWindow(request.page, request.per_page, total_items)
    items = [make_item(i) for i in window.indices()]

A page past the end is a valid, empty page; only a malformed or out-of-range parameter is
an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PageParamError", "PageRequest", "PageRules", "PageWindow", "parse_page_request"]

AboveMax = Literal["clamp", "reject"]


class PageParamError(ValueError):
    """A ``page`` or ``per_page`` value that cannot be used; names the parameter."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param} {reason}")
        self.param = param
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PageRules:
    """How one operation pages: parameter names, default and maximum page size.

    ``above_max`` says what a page size over the maximum does: ``clamp`` serves the maximum
    (as Flask-SQLAlchemy's ``max_per_page`` does), ``reject`` raises :class:`PageParamError`.
    """

    default_per_page: int
    max_per_page: int
    above_max: AboveMax = "clamp"
    page_param: str = "page"
    per_page_param: str = "per_page"


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    per_page: int


@dataclass(frozen=True, slots=True)
class PageWindow:
    """Page ``page`` (1-based) of ``per_page`` items out of ``total_items``."""

    page: int
    per_page: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return -(-self.total_items // self.per_page)

    @property
    def start(self) -> int:
        """Index of the page's first item (may lie past the end)."""
        return (self.page - 1) * self.per_page

    @property
    def stop(self) -> int:
        """One past the index of the page's last item, never past the end."""
        return max(self.start, min(self.start + self.per_page, self.total_items))

    @property
    def has_next(self) -> bool:
        return self.page < self.total_pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    def indices(self) -> range:
        """The item indices on this page: empty past the end, at most ``per_page`` long."""
        return range(self.start, self.stop) if self.start < self.total_items else range(0)


def parse_page_request(page: str | None, per_page: str | None, rules: PageRules) -> PageRequest:
    """Parse the query values (``None`` when absent) into a page number and a page size."""
    number = _positive(rules.page_param, page, 1)
    size = _positive(rules.per_page_param, per_page, rules.default_per_page)
    if size > rules.max_per_page:
        if rules.above_max == "reject":
            raise PageParamError(
                rules.per_page_param, f"must be between 1 and {rules.max_per_page}"
            )
        size = rules.max_per_page
    return PageRequest(number, size)


def _positive(param: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    stripped = text.strip()
    # ASCII digits only: int() would also take "١٢", "1_000" and "+5".
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 18:
        raise PageParamError(param, "must be a positive integer")
    value = int(stripped)
    if value < 1:
        raise PageParamError(param, "must be a positive integer")
    return value
