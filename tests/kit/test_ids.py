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


def test_a_numbered_id_is_the_text_of_the_uuid4_of_its_key_hash() -> None:
    import hashlib
    from uuid import UUID

    from simulator.ids import NumberedId

    for n in range(2000):
        key = f"seed/p/batch/{n}"
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        expected = UUID(bytes=digest, version=4)
        assert NumberedId(key).hex32() == expected.hex
        assert NumberedId(key).uuid() == str(expected)
