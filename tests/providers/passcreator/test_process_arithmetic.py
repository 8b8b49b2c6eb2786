"""A process's progress in integers is the exact-fraction result, and its time text strftime's."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from simulator.providers.passcreator.models import Process, format_time

steps = st.fractions(min_value=Fraction(1, 10**9), max_value=Fraction(10**12)).filter(
    lambda f: f > 0
)
START = datetime(2025, 1, 1, tzinfo=UTC)


@given(
    step=steps,
    elapsed_us=st.integers(min_value=-(10**6), max_value=10**17),
    total=st.integers(min_value=0, max_value=10**9),
)
def test_current_is_the_floor_of_elapsed_over_the_step(
    step: Fraction, elapsed_us: int, total: int
) -> None:
    process = Process("p", None, START, total, step)
    expected = 0 if elapsed_us <= 0 else min(total, math.floor(Fraction(elapsed_us) / step))
    assert process.current(START + timedelta(microseconds=elapsed_us)) == expected


NAIVE_FIRST = START.replace(year=1000, tzinfo=None)
NAIVE_LAST = START.replace(year=9999, month=12, day=30, tzinfo=None)


@given(st.datetimes(min_value=NAIVE_FIRST, max_value=NAIVE_LAST, timezones=st.just(UTC)))
def test_format_time_is_strftime(instant: datetime) -> None:
    assert format_time(instant) == instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
