"""Deterministic verification outcomes and the documentation's examples.

An item's verdict and confidence are a pure function of ``(seed, content)``; its processing
time and cost also depend on the batch's methods and options. A content prefix (case-
insensitive, after leading spaces) forces an outcome; see ``MAGIC`` and docs/providers/check.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from simulator.ids import IdFactory
from simulator.providers.check.formats import Item

__all__ = ["CLAIMS", "MAGIC", "METHOD_COSTS", "Outcome", "decide", "outcome"]

METHOD_COSTS = {
    "semantic": 1,
    "reasoning": 5,
    "tool": 5,
    "biprm": 4,
    "ensemble": 10,
    "entropy": 4,
    "formal": 3,
}

MAGIC = {
    "[true]": "verdict true, confidence 0.97 (accept with the default thresholds)",
    "[false]": "verdict false, confidence 0.91 (reject)",
    "[uncertain]": "verdict uncertain, confidence 0.62 (escalate)",
    "[fail]": "fails after every retry: 'Verification failed: all verification methods "
    "returned errors'",
    "[timeout]": "fails after timeout x (maxRetries + 1): 'Verification timeout after N seconds'",
    "[slow]": "takes 25 seconds to process, then succeeds",
}
FORCED = {"[true]": ("true", 0.97), "[false]": ("false", 0.91), "[uncertain]": ("uncertain", 0.62)}
SLOW_MS = 25_000
FAILED_MESSAGE = "Verification failed: all verification methods returned errors"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one item ends. ``duration_s`` is its time on the clock before scaling."""

    failed: bool
    verdict: str | None
    confidence: float | None
    processing_ms: int
    cost_cents: int
    error_message: str | None = None
    retry_count: int = 0
    verification_id: str | None = None

    @property
    def duration_s(self) -> float:
        return self.processing_ms / 1000


@dataclass(frozen=True, slots=True)
class Settings:
    """The batch options an outcome depends on."""

    timeout_ms: int = 30_000
    max_retries: int = 3
    min_confidence: float | None = None
    retry_on_low_confidence: bool = False


def magic_of(content: str) -> str | None:
    head = content.lstrip()[:12].lower()
    return next((prefix for prefix in MAGIC if head.startswith(prefix)), None)


def outcome(
    ids: IdFactory, item: Item, methods: Mapping[str, float], settings: Settings
) -> Outcome:
    rng = ids.derive("content", item.content)
    active = [m for m, weight in methods.items() if weight > 0]
    processing = rng.randint(800, 1600) + 250 * max(0, len(active) - 1)
    draw = rng.random()
    confidence_draw = rng.random()
    magic = magic_of(item.content)
    if magic == "[slow]":
        processing = SLOW_MS
    attempts = settings.max_retries + 1
    if magic == "[timeout]" or processing > settings.timeout_ms:
        total = settings.timeout_ms * attempts
        message = f"Verification timeout after {total / 1000:g} seconds"
        return Outcome(True, None, None, total, 0, message, settings.max_retries)
    if magic == "[fail]":
        return Outcome(
            True, None, None, processing * attempts, 0, FAILED_MESSAGE, settings.max_retries
        )
    if magic in FORCED:
        verdict, confidence = FORCED[magic]
    elif draw < 0.5:
        verdict, confidence = "true", 0.80 + 0.19 * confidence_draw
    elif draw < 0.8:
        verdict, confidence = "false", 0.70 + 0.29 * confidence_draw
    else:
        verdict, confidence = "uncertain", 0.40 + 0.35 * confidence_draw
    confidence = round(confidence, 2)
    low = settings.min_confidence is not None and confidence < settings.min_confidence
    if settings.retry_on_low_confidence and low:
        processing *= attempts
    cost = sum(METHOD_COSTS[m] for m in active) + len(item.content) // 10_000
    return Outcome(False, verdict, confidence, processing, cost)


def decide(verdict: str, confidence: float, accept: float, escalate: float) -> str:
    """accept, reject or escalate: a sure "true" is accepted, a "false" rejected."""
    if verdict == "uncertain" or confidence < escalate:
        return "escalate"
    if verdict == "false":
        return "reject"
    return "accept" if confidence >= accept else "escalate"


ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyz0123456789"


def verification_id(ids: IdFactory, batch_id: str, index: int) -> str:
    return "ver_" + ids.hashed(batch_id, index, "ver", n=12, alphabet=ALPHANUMERIC)


_FACTS = (
    "The Earth is approximately 4.5 billion years old.",
    "Water boils at 100 degrees Celsius at sea level.",
    "The Great Wall of China is visible from space.",
    "Light from the Sun takes about eight minutes to reach the Earth.",
    "Humans use only 10 percent of their brains.",
    "Mount Everest is the highest mountain above sea level.",
    "The human body has 206 bones in adulthood.",
    "Goldfish have a memory span of three seconds.",
    "The Pacific is the largest ocean on Earth.",
    "Lightning never strikes the same place twice.",
    "DNA has a double helix structure.",
    "Bats are blind.",
    "The speed of light in a vacuum is about 299,792 kilometres per second.",
    "Bulls are enraged by the colour red.",
    "Venus is the hottest planet in the Solar System.",
    "Napoleon Bonaparte was unusually short for his time.",
    "Sound travels faster in water than in air.",
    "Vaccines cause autism.",
    "The Amazon is the largest rainforest in the world.",
    "Sugar makes children hyperactive.",
    "Antibiotics are effective against viral infections.",
    "The Moon has no atmosphere to speak of.",
    "Diamonds are made of carbon.",
    "Cracking your knuckles causes arthritis.",
    "Honey never spoils when stored properly.",
    "Seasons are caused by the Earth's distance from the Sun.",
    "Octopuses have three hearts.",
    "Glass is a slow-flowing liquid at room temperature.",
    "Mercury is the closest planet to the Sun.",
)
_SOURCES = ("wikipedia", "textbook", "internet")
_CATEGORIES = ("science", "physics", "myth")

# 87 claims, the size of the upload page's claims.csv.
CLAIMS = tuple(
    Item(
        fact if n < len(_FACTS) else f"{fact} (restated, #{n // len(_FACTS) + 1})",
        {"source": _SOURCES[n // len(_FACTS)], "category": _CATEGORIES[n % 3]},
        f"claim-{n + 1:03d}",
    )
    for n, fact in ((n, _FACTS[n % len(_FACTS)]) for n in range(87))
)

# The results page's batch: 50 items, 48 completed, 2 failed; the first three as printed.
SEED_RESULTS = (
    Item("The Earth is approximately 4.5 billion years old.", {"source": "textbook"}, "fact-001"),
    Item("The Great Wall of China is visible from space.", None, "fact-002"),
    Item("Cold fusion was reproduced in a tabletop experiment in 2023.", None, "fact-003"),
    *(Item(c.content, c.context, f"fact-{n:03d}") for n, c in enumerate(CLAIMS[3:50], start=4)),
)
SEED_OUTCOMES = {
    0: Outcome(False, "true", 0.95, 1250, 5, verification_id="ver_xyz789"),
    1: Outcome(False, "false", 0.88, 1180, 5, verification_id="ver_abc456"),
    2: Outcome(True, None, None, 120_000, 0, "Verification timeout after 120 seconds", 3),
    29: Outcome(True, None, None, 3_600, 0, FAILED_MESSAGE, 3),
}
