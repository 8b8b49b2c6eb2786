"""Deepvue bulk verification (production.deepvue.tech).

Modelled: ``POST /v1/authorize`` (multipart or urlencoded client_id/client_secret → HS256 JWT,
24 h on the clock); Bulk UPI VPA verification ``POST /v1/verification/upi-basic/batch``
(multipart ``batch_file``, a CSV with ``vpa`` and optional ``name``); the status poll
``GET /v1/verification/batch-processing-status`` (``data.status`` 201 in progress → 200
completed); the output CSV at the URL the status gives; every auth error of the status page;
the seed page's two request ids; a POST to the submit's ``webhook_url`` when the batch
completes, its body the status endpoint's completed body (the payload is undocumented: this
is inferred), unsigned, retried on the clock (``simulator.webhooks``).

Not modelled: the real webhook payload, if it differs; rate limits
(available as faults), the other Deepvue verification products, ``x-api-key``-only endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.kit.context import ProviderContext
from simulator.kit.provider import Provider
from simulator.providers.deepvue import errors
from simulator.providers.deepvue.models import TEST_CLIENTS, DeepvueOptions, start
from simulator.providers.deepvue.resources import resources
from simulator.providers.deepvue.routes import ROUTES


def _credentials(ctx: ProviderContext) -> Mapping[str, object]:
    active, inactive = TEST_CLIENTS
    return {
        "client_id": active.client_id,
        "client_secret": active.client_secret,
        "x_api_key": active.client_secret,
        "inactive_client": {
            "client_id": inactive.client_id,
            "client_secret": inactive.client_secret,
        },
    }


PROVIDER = Provider(
    name="deepvue",
    title="Deepvue bulk verification",
    routes=ROUTES,
    store_factory=start,
    errors=errors.CATALOGUE,
    error_for_status=errors.StatusError.for_status,
    rate_limited=errors.RateLimitExceeded.for_retry,
    credentials=_credentials,
    options_type=DeepvueOptions,
    secret_headers=frozenset({"x-api-key"}),
    secret_fields=frozenset({"client_secret", "access_token"}),
    resources=resources,
)
