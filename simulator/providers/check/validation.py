"""The rules of a ``POST /v1/batch`` body, per the Create Batch page.

Each problem becomes a ``details`` entry ``{field, message}`` of one 422 ``validation_error``
(at most ``MAX_DETAILS`` of them); a method outside the caller's plan is a 403 ``forbidden``.
Unknown top-level and option fields are ignored, as the example requests carry fields
(``webhookUrl``) the page does not list.
"""

from __future__ import annotations

import math

from simulator.providers.check import errors
from simulator.providers.check.formats import Item, json_item
from simulator.providers.check.models import METHOD_PLANS, BatchOptions, CreateRequest, Plan

__all__ = ["parse_create"]

MAX_DETAILS = 20
MAX_NAME = 255
MAX_FILE_ID = 200
DEFAULT_METHODS = {"reasoning": 1.0}


def _number(value: object) -> float | None:
    """``value`` as a finite number; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class _Problems:
    def __init__(self) -> None:
        self.details: list[errors.Detail] = []

    def add(self, field: str, message: str) -> None:
        if len(self.details) < MAX_DETAILS:
            self.details.append({"field": field, "message": message})

    def raise_any(self) -> None:
        if self.details:
            raise errors.ValidationFailed.fields(self.details)


def parse_create(body: object, plan: Plan, max_chars: int) -> CreateRequest:
    """The validated request, or Check's error for the first kind of problem found."""
    if not isinstance(body, dict):
        raise errors.ValidationFailed.field("body", "must be a JSON object")
    problems = _Problems()
    has_file, has_items = "fileId" in body, "items" in body
    if has_file == has_items:
        message = "provide either fileId or items, not both" if has_file else "is required"
        problems.add("fileId" if has_file else "fileId|items", message)
    file_id = body.get("fileId")
    if has_file and (not isinstance(file_id, str) or not 0 < len(file_id) <= MAX_FILE_ID):
        problems.add("fileId", f"must be a string of 1 to {MAX_FILE_ID} characters")
    items = _items(body["items"], plan, max_chars, problems) if has_items else ()
    name = body.get("name")
    if "name" in body and (not isinstance(name, str) or len(name) > MAX_NAME):
        problems.add("name", f"must be a string of at most {MAX_NAME} characters")
    webhook = body.get("webhookUrl")
    if "webhookUrl" in body and not isinstance(webhook, str):
        problems.add("webhookUrl", "must be a string")
    methods = _methods(body["methods"], problems) if "methods" in body else dict(DEFAULT_METHODS)
    options = _options(body["options"], problems) if "options" in body else BatchOptions()
    problems.raise_any()
    for method in methods:
        if not plan.allows(method):
            needed = METHOD_PLANS[method]
            raise errors.MethodNotInPlan.of(method, needed.capitalize())
    return CreateRequest(
        methods=methods,
        options=options,
        name=name if isinstance(name, str) else None,
        file_id=file_id if isinstance(file_id, str) else None,
        items=items,
        webhook_url=webhook if isinstance(webhook, str) else None,
    )


def _items(raw: object, plan: Plan, max_chars: int, problems: _Problems) -> tuple[Item, ...]:
    if not isinstance(raw, list) or not raw:
        problems.add("items", "must be a non-empty array of items")
        return ()
    if len(raw) > plan.max_batch_items:
        problems.add(
            "items", f"the {plan.title} plan allows at most {plan.max_batch_items} items per batch"
        )
        return ()
    items: list[Item] = []
    for index, entry in enumerate(raw):
        item, problem = json_item(entry, max_chars)
        if item is None:
            problems.add(f"items[{index}]", problem)
        else:
            items.append(item)
    return tuple(items)


def _methods(raw: object, problems: _Problems) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        problems.add("methods", 'must be an object of method weights, e.g. {"reasoning": 1}')
        return {}
    methods: dict[str, float] = {}
    for name, weight in raw.items():
        if name not in METHOD_PLANS:
            known = ", ".join(METHOD_PLANS)
            problems.add(f"methods.{name}", f"unknown method; use one of {known}")
        elif (number := _number(weight)) is None or not 0 <= number <= 1:
            problems.add(f"methods.{name}", "weight must be a number from 0 to 1")
        else:
            methods[name] = number
    if methods and not any(weight > 0 for weight in methods.values()):
        problems.add("methods", "at least one method needs a weight above 0")
    return methods


def _options(raw: object, problems: _Problems) -> BatchOptions:
    defaults = BatchOptions()
    if not isinstance(raw, dict):
        problems.add("options", "must be an object")
        return defaults
    before = len(problems.details)

    def integer(key: str, default: int, low: int, high: int, unit: str = "") -> int:
        if key not in raw:
            return default
        number = _number(raw[key])
        if number is not None and number.is_integer() and low <= number <= high:
            return int(number)
        problems.add(f"options.{key}", f"must be an integer from {low} to {high}{unit}")
        return default

    def fraction(key: str, default: float | None) -> float | None:
        if key not in raw:
            return default
        number = _number(raw[key])
        if number is not None and 0 <= number <= 1:
            return number
        problems.add(f"options.{key}", "must be a number from 0 to 1")
        return default

    timeout = integer("timeout", defaults.timeout, 1000, 300_000, " (ms)")
    retries = integer("maxRetries", defaults.max_retries, 0, 5)
    min_confidence = fraction("minConfidence", defaults.min_confidence)
    accept = fraction("acceptThreshold", defaults.accept_threshold) or 0.0
    escalate = fraction("escalateThreshold", defaults.escalate_threshold) or 0.0
    retry_low = raw.get("retryOnLowConfidence", False)
    if not isinstance(retry_low, bool):
        problems.add("options.retryOnLowConfidence", "must be a boolean")
    elif retry_low and min_confidence is None:
        problems.add("options.minConfidence", "is required when retryOnLowConfidence is set")
    if not accept > escalate:
        problems.add("options.acceptThreshold", "must be greater than escalateThreshold")
    if len(problems.details) > before:
        return defaults
    return BatchOptions(
        timeout=timeout,
        min_confidence=min_confidence,
        accept_threshold=accept,
        escalate_threshold=escalate,
        max_retries=retries,
        retry_on_low_confidence=retry_low is True,
    )
