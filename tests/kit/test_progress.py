from __future__ import annotations

import json
from datetime import timedelta

from simulator.kit.progress import Progress
from simulator.store import Codec
from tests.conftest import START


def test_items_finish_at_their_offsets_on_the_clock() -> None:
    progress = Progress(START, (3.0, 1.0, 2.0))
    assert progress.finished_at == START + timedelta(seconds=3)
    assert progress.finishes_at(1) == START + timedelta(seconds=1)
    seen = [progress.done_count(START + timedelta(seconds=s)) for s in (0, 1, 2.5, 3, 9)]
    assert seen == [0, 1, 2, 3, 3]
    assert not progress.item_done(0, START + timedelta(seconds=2.9))
    assert progress.item_done(0, START + timedelta(seconds=3))
    assert not progress.done(START + timedelta(seconds=2.9))
    assert progress.done(START + timedelta(seconds=3))


def test_work_done_as_a_whole_is_one_item() -> None:
    progress = Progress.whole(START, 30)
    assert progress.done_count(START + timedelta(seconds=29)) == 0
    assert progress.done(START + timedelta(seconds=30))


def test_a_progress_kept_in_a_store_is_stored_as_its_start_and_ends_alone() -> None:
    """When it is over is derived, never stored: a copy read back finishes when it did."""
    progress = Progress(START, (3.0, 1.0, 2.0))
    codec = Codec(Progress)
    stored = codec.dumps(progress)
    assert json.loads(stored) == {"started_at": "2026-03-09T08:14:08Z", "ends": [3.0, 1.0, 2.0]}
    copy = codec.loads(stored)
    assert copy == progress
    assert copy.finished_at == START + timedelta(seconds=3)
    assert copy.done(START + timedelta(seconds=3))
    assert not copy.done(START + timedelta(seconds=2))
