"""HelloAtlas Bulk Service: bulk document extraction with paginated results (api.helloatlas.in).

Modelled: ``POST /v1/bulk/authtoken`` (``Client-Id`` / ``Client-Secret`` headers → an HS256
JWT for the ``Token`` header, 3600 s on the clock); ``POST /v1/bulk/multiupload``
(``product_type`` and ``file_urls`` → a 201 array sharing one ``BATCH-nnnnn-AAAAA-<UTC
timestamp>`` batch id, parsed as it streams, stored as compact metadata);
``GET /v1/bulk/extracts`` (pages of at most 50 documents; each document finishes on the clock
and its ``file_data`` for AADHAAR, PAN, DRIVING_LICENSE, VOTER_ID, PASSPORT or GST_CERT is
generated from the seed when its page is read); magic file names for failures, low
confidence and slow documents; every documented error in HelloAtlas's
``{error_code, error_message}`` envelope; the seed page's batch
BATCH-69469-BBRSS-20260309081408 and the multiupload page's BATCH-30732-SIYKJ-20251121113228.

Not modelled: fetching the file URLs (never done; the type comes from the file name), the
redacted Aadhaar image behind ``redact_url``, the Flow API (``/v3/verification/*``,
``flow_uuid``, ``/refresh-token``), the sandbox docstream host, rate limits (available as
faults), the other business document types (UDYAM_CERT, SHOP_ACT_LICENSE, FSSAI, ...).
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.kit.context import ProviderContext
from simulator.kit.provider import Provider
from simulator.providers.helloatlas import errors
from simulator.providers.helloatlas.models import TEST_CLIENTS, HelloAtlasOptions, start
from simulator.providers.helloatlas.resources import resources
from simulator.providers.helloatlas.routes import ROUTES


def _credentials(ctx: ProviderContext) -> Mapping[str, object]:
    client, other = TEST_CLIENTS
    return {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "other_client": {"client_id": other.client_id, "client_secret": other.client_secret},
    }


PROVIDER = Provider(
    name="helloatlas",
    title="HelloAtlas bulk document extraction",
    routes=ROUTES,
    store_factory=start,
    errors=errors.CATALOGUE,
    error_for_status=errors.StatusError.for_status,
    rate_limited=errors.RateLimited.for_retry,
    credentials=_credentials,
    options_type=HelloAtlasOptions,
    secret_headers=frozenset({"client-secret", "token"}),
    secret_fields=frozenset({"access_token"}),
    resources=resources,
)
