from __future__ import annotations

from simulator.ids import IdFactory


def test_the_nth_id_of_a_scope_is_a_function_of_seed_scope_and_n() -> None:
    one, two = IdFactory(7).child("p"), IdFactory(7).child("p")
    two.hex32()  # drawing from the sequential generator changes nothing
    assert one.numbered("batch", 3).hex32() == two.numbered("batch", 3).hex32()
    different = {
        one.numbered("batch", 4).hex32(),
        one.numbered("other", 3).hex32(),
        IdFactory(8).child("p").numbered("batch", 3).hex32(),
    }
    assert one.numbered("batch", 3).hex32() not in different
    assert len(different) == 3
