"""What every reference client shares: retrying a call the way a careful client does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["GaveUp", "RetryPolicy", "call_with_retries"]

Sleep = Callable[[float], None]
Now = Callable[[], float]


class GaveUp(RuntimeError):
    """A call failed more often than the retry policy allows."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 429 (after Retry-After), 5xx, dropped connections and cut-off bodies."""

    attempts: int = 8
    first_backoff: float = 1.0
    max_backoff: float = 30.0
    retry_statuses: frozenset[int] = field(default=frozenset({429, 500, 502, 503, 504}))

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.first_backoff * 2**attempt))


def call_with_retries(
    send: Callable[[], httpx.Response],
    sleep: Sleep,
    policy: RetryPolicy,
    *,
    intact: Callable[[httpx.Response], bool] | None = None,
) -> httpx.Response:
    """``send()`` until it gives an answer worth acting on; returns that response.

    A retryable status, a transport error, or a successful answer whose body is not
    ``intact`` (by default: not JSON) is retried after a backoff, or after ``Retry-After``
    when the answer gives one.
    """
    intact = intact or _is_json
    last: str = "no attempt"
    for attempt in range(policy.attempts):
        try:
            response = send()
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
            sleep(policy.backoff(attempt))
            continue
        if response.status_code in policy.retry_statuses:
            last = f"HTTP {response.status_code}"
            sleep(_retry_after(response) or policy.backoff(attempt))
            continue
        if response.status_code < 300 and not intact(response):
            last = "a response body that is cut short or not what was asked for"
            sleep(policy.backoff(attempt))
            continue
        return response
    raise GaveUp(f"gave up after {policy.attempts} attempts; last: {last}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def _is_json(response: httpx.Response) -> bool:
    try:
        json.loads(response.content)
    except ValueError:
        return False
    return True


def system_sleep(seconds: float) -> None:
    time.sleep(seconds)


def system_now() -> float:
    return time.monotonic()


def json_of(response: httpx.Response) -> Any:
    return response.json()
