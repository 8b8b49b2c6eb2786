"""Acme's results: item ``i`` of a batch scores a pure function of the seed, the batch and i."""

from __future__ import annotations

from simulator.ids import IdFactory

__all__ = ["score"]


def score(ids: IdFactory, batch_id: str, index: int) -> int:
    """The score of a batch's item, 0..100, the same however often it is asked."""
    return ids.derive_int(batch_id, index) % 101
