"""The kit's error pieces: the catalogue read off a module, Retry-After, any status."""

from __future__ import annotations

from typing import ClassVar

from simulator.clock import ManualClock
from simulator.ids import IdFactory
from simulator.kit import errors as kit
from simulator.kit.context import ProviderContext
from simulator.settings import Settings
from simulator.store import MemoryStore
from tests.conftest import START


class Envelope(kit.ProviderError):
    in_catalogue = False
    text: ClassVar[str] = ""

    def body(self) -> object:
        return {"text": self.text}


class First(Envelope):
    status_code = 400
    text = "first"


class Limited(kit.RateLimitError, Envelope):
    text = "slow down"


class AnyStatus(kit.StatusError, Envelope):
    in_catalogue = False

    def body(self) -> object:
        return {"text": self.phrase}


class Last(First):
    text = "last"


CTX = ProviderContext(ManualClock(START), IdFactory(1), Settings(), None, MemoryStore())


def test_the_catalogue_is_every_error_of_the_module_in_order_but_those_left_out() -> None:
    assert kit.catalogue(__name__) == (First, Limited, Last)


def test_a_rate_limit_error_says_when_to_retry_in_the_envelope() -> None:
    response = Limited.for_retry(7, CTX).response()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.body == b'{"text":"slow down"}'
    assert "retry-after" not in Limited().response().headers


def test_a_status_error_names_the_reason_phrase() -> None:
    assert AnyStatus.for_status(418, CTX).response().body == b'{"text":"I\'m a Teapot"}'
    unnamed = AnyStatus.for_status(599, CTX).response()
    assert (unnamed.status_code, unnamed.body) == (599, b'{"text":"Error"}')
