from __future__ import annotations

from datetime import timedelta

from simulator.kit.progress import Progress
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
