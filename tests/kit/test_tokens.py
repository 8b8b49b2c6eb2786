from __future__ import annotations

import asyncio
from datetime import timedelta

import jwt
import pytest

from simulator.clock import ManualClock
from simulator.ids import IdFactory
from simulator.kit.tokens import Problem, TokenRejected, TokenSigner
from simulator.store import MemoryStore
from tests.conftest import START


def signer(audience: str = "acme", clock: ManualClock | None = None) -> TokenSigner:
    return TokenSigner(audience, clock or ManualClock(START), IdFactory(1))


def problem(tokens: TokenSigner, token: str) -> Problem:
    with pytest.raises(TokenRejected) as rejected:
        tokens.subject(token)
    return rejected.value.problem


def test_a_token_names_its_subject_until_it_expires_on_the_clock() -> None:
    clock = ManualClock(START)
    tokens = signer(clock=clock)
    token, expiry = tokens.issue("client-1", 60)
    assert expiry == START + timedelta(seconds=60)
    clock.advance(timedelta(seconds=59))
    assert tokens.subject(token) == "client-1"
    clock.advance(timedelta(seconds=1))
    assert problem(tokens, token) is Problem.EXPIRED


@pytest.mark.parametrize("text", ["abc", "a.b.c", "", "eyJ.eyJ.sig"])
def test_text_that_is_not_a_jwt_is_malformed(text: str) -> None:
    assert problem(signer(), text) is Problem.MALFORMED


def test_tokens_of_another_instance_or_audience_do_not_verify() -> None:
    mine = signer()
    theirs_token, _ = signer().issue("client-1", 60)
    other_audience, _ = TokenSigner("other", mine.clock, IdFactory(1), mine.key).issue("c", 60)
    assert problem(mine, theirs_token) is Problem.INVALID
    assert problem(mine, other_audience) is Problem.INVALID


def test_unsigned_or_claimless_tokens_do_not_verify() -> None:
    tokens = signer()
    unsigned = jwt.encode({"sub": "c", "aud": "acme", "exp": 4_000_000_000, "iat": 1}, "", "none")
    no_iat = jwt.encode({"sub": "c", "aud": "acme", "exp": 4_000_000_000}, tokens.key, "HS256")
    assert problem(tokens, unsigned) is Problem.INVALID
    assert problem(tokens, no_iat) is Problem.INVALID


def test_a_remembered_token_still_expires_and_the_memory_is_bounded() -> None:
    clock = ManualClock(START)
    tokens = TokenSigner("acme", clock, IdFactory(1), remembered=2)
    issued = [tokens.issue(f"client-{n}", 60)[0] for n in range(3)]
    assert [tokens.subject(t) for t in issued] == ["client-0", "client-1", "client-2"]
    assert len(tokens._verified) == 2
    clock.advance(timedelta(seconds=60))
    assert problem(tokens, issued[2]) is Problem.EXPIRED


def test_shared_signers_on_one_store_and_seed_accept_each_others_tokens() -> None:
    clock = ManualClock(START)
    store = MemoryStore()

    def shared(seed: int = 1) -> TokenSigner:
        return TokenSigner("acme", clock, IdFactory(seed), shared=True)

    async def scenario() -> None:
        one = await shared().keyed(store.scoped("p"))
        two = await shared().keyed(store.scoped("p"))
        other_seed = await shared(seed=2).keyed(store.scoped("p"))
        other_store = await shared().keyed(MemoryStore().scoped("p"))
        token, _ = one.issue("client", 60)
        assert two.subject(token) == "client"
        assert problem(other_seed, token) is Problem.INVALID
        assert problem(other_store, token) is Problem.INVALID

    asyncio.run(scenario())
