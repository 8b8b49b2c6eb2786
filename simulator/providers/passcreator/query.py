"""Passcreator's Query Language: which passes a bulk update or a list applies to.

A query is ``{templateId?, projectId?, searchPhrase?, groups: [[{field, operator, value}]]}``.
The outer list of groups is ORed, the conditions inside a group are ANDed, and when ``value`` is
a list its values are ORed. No groups (or an empty list) selects every pass the other keys allow.

String comparisons ignore case (as a MySQL default collation would); ``greaterThan`` and its
kin compare numerically when both sides are numbers, otherwise as strings (``Y-m-d H:i:s``
dates compare correctly that way). Projects are not modelled: a ``projectId`` matches nothing.

A query compares at most :data:`MAX_TERMS` values in all (a condition without a value counts
as one), so that one pass is judged in about a millisecond; a larger one is refused with the
usual ``Invalid query`` error. [I] Passcreator documents no such bound (nor the per-group
ones); it is the simulator's, in Passcreator's own words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from simulator.providers.passcreator.errors import QUERY_INVALID

__all__ = ["MAX_TERMS", "OPERATORS", "Condition", "Query", "QueryError", "parse_query"]

Scalar = str | int | float | bool | None

MAX_GROUPS = 50
MAX_CONDITIONS = 50
MAX_VALUES = 100
# Values compared in all, over every condition of every group (a unary condition counts 1).
MAX_TERMS = 1000
UNARY = frozenset({"empty", "notEmpty", "isTrue", "isFalse"})
OPERATORS = (
    "equals",
    "notEquals",
    "contains",
    "doesNotContain",
    "greaterThan",
    "greaterThanOrEquals",
    "lowerThan",
    "lowerThanOrEquals",
    "beginsWith",
    "endsWith",
    "empty",
    "notEmpty",
    "isTrue",
    "isFalse",
)


class QueryError(ValueError):
    """A query that cannot be evaluated; ``str()`` is Passcreator's message."""

    def __init__(self, reason: str) -> None:
        super().__init__(QUERY_INVALID.format(reason=reason))


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    operator: str
    values: tuple[Scalar, ...]

    def matches(self, fields: Mapping[str, Scalar]) -> bool:
        actual = fields.get(self.field)
        if self.operator in UNARY:
            return _UNARY_TESTS[self.operator](actual)
        return any(_BINARY_TESTS[self.operator](actual, value) for value in self.values)


@dataclass(frozen=True, slots=True)
class Query:
    template_id: str | None = None
    project_id: str | None = None
    search_phrase: str | None = None
    groups: tuple[tuple[Condition, ...], ...] = field(default=())

    def matches(self, fields: Mapping[str, Scalar]) -> bool:
        if self.project_id is not None:
            return False
        if self.template_id is not None and _text(fields.get("templateId")) != _text(
            self.template_id
        ):
            return False
        if self.search_phrase:
            phrase = self.search_phrase.lower()
            if not any(phrase in _text(v) for v in fields.values()):
                return False
        return not self.groups or any(all(c.matches(fields) for c in g) for g in self.groups)


def parse_query(raw: object) -> Query:
    """A :class:`Query` from its JSON form; raises :class:`QueryError` saying what is wrong."""
    if not isinstance(raw, dict):
        raise QueryError("the query must be an object")
    unknown = sorted(set(raw) - {"templateId", "projectId", "searchPhrase", "groups"})
    if unknown:
        raise QueryError(f"unknown key {unknown[0]}")
    template_id = _optional_text(raw, "templateId")
    project_id = _optional_text(raw, "projectId")
    search_phrase = _optional_text(raw, "searchPhrase")
    groups_raw = raw.get("groups", [])
    if not isinstance(groups_raw, list) or len(groups_raw) > MAX_GROUPS:
        raise QueryError(f"groups must be a list of at most {MAX_GROUPS} groups")
    groups = []
    terms = 0
    for group in groups_raw:
        if not isinstance(group, list) or not 0 < len(group) <= MAX_CONDITIONS:
            raise QueryError(f"each group must be a list of 1 to {MAX_CONDITIONS} conditions")
        # Counted before each condition is looked into: a query over the cap costs no more.
        terms += sum(_terms(c) for c in group)
        if terms > MAX_TERMS:
            raise QueryError(f"a query can compare at most {MAX_TERMS} values in all")
        groups.append(tuple(_condition(c) for c in group))
    return Query(template_id, project_id, search_phrase, tuple(groups))


def _optional_text(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise QueryError(f"{key} must be a string")
    return value


def _terms(raw: object) -> int:
    """Values a condition compares (one without a list of values counts as one)."""
    value = raw.get("value") if isinstance(raw, dict) else None
    return max(1, len(value)) if isinstance(value, list) else 1


def _condition(raw: object) -> Condition:
    if not isinstance(raw, dict):
        raise QueryError("each condition must be an object with field, operator and value")
    name, operator = raw.get("field"), raw.get("operator")
    if not isinstance(name, str) or not name:
        raise QueryError("each condition needs a field")
    if operator not in OPERATORS:
        raise QueryError(f"operator must be one of {', '.join(OPERATORS)}")
    value = raw.get("value")
    values = tuple(value) if isinstance(value, list) else (value,)
    if operator not in UNARY:
        if "value" not in raw or not 0 < len(values) <= MAX_VALUES:
            raise QueryError(f"operator {operator} needs a value (at most {MAX_VALUES})")
        if not all(_is_scalar(v) for v in values):
            raise QueryError("a value must be a string, number, boolean or null")
    return Condition(name, str(operator), values if operator not in UNARY else ())


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _text(value: Scalar) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _number(value: Scalar) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _compare(actual: Scalar, expected: Scalar) -> int | None:
    """-1, 0 or 1; None when the pass has no value to compare."""
    if actual is None or actual == "":
        return None
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return (left > right) - (left < right)
    a, b = _text(actual), _text(expected)
    return (a > b) - (a < b)


def _equals(actual: Scalar, expected: Scalar) -> bool:
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return left == right
    return _text(actual) == _text(expected)


def _ordered(test: Callable[[int], bool]) -> Callable[[Scalar, Scalar], bool]:
    def check(actual: Scalar, expected: Scalar) -> bool:
        order = _compare(actual, expected)
        return order is not None and test(order)

    return check


def _truthy(value: Scalar) -> bool:
    return _text(value) in ("1", "true", "yes", "on")


_BINARY_TESTS: dict[str, Callable[[Scalar, Scalar], bool]] = {
    "equals": _equals,
    "notEquals": lambda a, e: not _equals(a, e),
    "contains": lambda a, e: _text(e) in _text(a),
    "doesNotContain": lambda a, e: _text(e) not in _text(a),
    "beginsWith": lambda a, e: _text(a).startswith(_text(e)),
    "endsWith": lambda a, e: _text(a).endswith(_text(e)),
    "greaterThan": _ordered(lambda o: o > 0),
    "greaterThanOrEquals": _ordered(lambda o: o >= 0),
    "lowerThan": _ordered(lambda o: o < 0),
    "lowerThanOrEquals": _ordered(lambda o: o <= 0),
}
_UNARY_TESTS: dict[str, Callable[[Scalar], bool]] = {
    "empty": lambda a: a is None or a == "",
    "notEmpty": lambda a: not (a is None or a == ""),
    "isTrue": _truthy,
    "isFalse": lambda a: not _truthy(a),
}
