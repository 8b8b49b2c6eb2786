"""Acme batch scoring: a fifth provider, as small as a provider gets.

Modelled: an API key in ``X-Acme-Key``; ``POST /v1/batches`` (JSON ``items``, strings) →
201 processing; ``GET /v1/batches/{batch_id}`` → 201 while processing, 200 with a score per
item once ``processing_seconds`` have passed on the clock; a wrong key's 401.

Not modelled: anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from simulator.kit.context import ProviderContext
from simulator.kit.provider import Provider
from tests.fifth.acme import errors
from tests.fifth.acme.models import TEST_KEY, AcmeOptions, start
from tests.fifth.acme.routes import ROUTES


def _credentials(ctx: ProviderContext) -> Mapping[str, object]:
    return {"api_key": TEST_KEY}


PROVIDER = Provider(
    name="acme",
    title="Acme batch scoring",
    routes=ROUTES,
    store_factory=start,
    errors=errors.CATALOGUE,
    error_for_status=errors.StatusError.for_status,
    rate_limited=errors.TooManyRequests.for_retry,
    credentials=_credentials,
    options_type=AcmeOptions,
    secret_headers=frozenset({"x-acme-key"}),
    # Kept beside the folder, not in bulksim's packages: the record says where.
    spec=Path(__file__).parent.parent / "acme.yaml",
    suite="tests.fifth.suite",
)
