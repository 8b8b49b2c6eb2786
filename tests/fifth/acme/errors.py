"""Acme's error catalogue. Every error has one envelope::

    {"error": {"status": 401, "message": "Invalid API key"}}

=============================  ====  ==================================
cause                          HTTP  message
=============================  ====  ==================================
no ``X-Acme-Key`` or a wrong   401   Invalid API key
over the rate (fault only)     429   Too many requests
unknown batch, path, method    404…  the status's reason phrase
=============================  ====  ==================================
"""

from __future__ import annotations

from typing import ClassVar

from simulator.kit import errors as kit
from simulator.kit.errors import ProviderError


class AcmeError(ProviderError):
    """Envelope: ``{"error": {"status": <HTTP status>, "message": "<message>"}}``."""

    in_catalogue = False
    message: ClassVar[str]

    def body(self) -> object:
        return {"error": {"status": self.status_code, "message": self.message}}


class InvalidApiKey(AcmeError):
    status_code = 401
    message = "Invalid API key"


class TooManyRequests(kit.RateLimitError, AcmeError):
    message = "Too many requests"


class StatusError(kit.StatusError):
    """Any status in Acme's envelope, with its reason phrase."""

    in_catalogue = False

    def body(self) -> object:
        return {"error": {"status": self.status_code, "message": self.phrase}}


CATALOGUE = kit.catalogue(__name__)
