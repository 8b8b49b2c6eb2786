"""Check batch verification (api.check.ai/v1).

Modelled: ``Authorization: Bearer vfy_...`` with one test key per plan (free, pro,
enterprise); ``POST /v1/batch/upload`` (multipart ``file``, CSV or JSON per the File Formats
page, every response of the upload page, the size cap enforced while the body streams);
one-shot fileIds that expire on the clock and are consumed atomically by ``POST /v1/batch``;
batch create from a fileId or ``items`` with methods, name and options and their plan rules;
``GET /v1/batch`` (limit, offset, status), ``GET /v1/batch/{id}``,
``GET /v1/batch/{id}/results`` (limit, offset) and ``POST /v1/batch/{id}/cancel``; items
moving pending → queued → processing → completed | failed on the clock, with deterministic
verdicts, confidences, decisions and costs, and magic content prefixes; ``X-RateLimit-*``
headers on every response, with 429 enforcement as an option; the documentation's fileId
and batch ids, owned by the pro test key; ``batch.completed`` / ``batch.failed`` to a
batch's ``webhookUrl`` when it ends, ``{"id": "evt_...", "type", "createdAt", "data"}`` (data:
the batch as ``GET /v1/batch/{id}`` shows it then), signed ``X-Check-Signature:
t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with the organisation's webhook secret
(``webhook_secrets`` in ``/_sim/providers``), retried on the clock (``simulator.webhooks``);
webhook endpoints registered for an organisation (the dashboard's setting, on the control
plane: ``endpoints``) get the batch events they take and ``verification.completed`` /
``verification.failed`` as each item ends.

Not modelled: ``POST /v1/verify``, ``GET /v1/verify/{id}``, ``GET /v1/status``; the webhook
events ``verification.escalated``, ``escalation.resolved`` and ``usage.limit.*`` (never sent);
monthly verification quotas;
deduplication by ``idempotencyKey`` (stored and echoed only); ``requestId`` in error bodies
(the upload page's examples have none).
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.kit.context import ProviderContext
from simulator.kit.provider import Provider
from simulator.providers.check import errors
from simulator.providers.check.models import (
    KEYS_BY_PLAN,
    TEST_KEYS,
    CheckOptions,
    start,
    webhook_secret,
)
from simulator.providers.check.resources import resources
from simulator.providers.check.routes import ROUTES


def _credentials(ctx: ProviderContext) -> Mapping[str, object]:
    return {
        "api_key": KEYS_BY_PLAN["pro"],
        "plans": dict(KEYS_BY_PLAN),
        # Each organisation's webhook signing secret (X-Check-Signature), by organisation id.
        "webhook_secrets": {org.id: webhook_secret(ctx.ids, org.id) for org in TEST_KEYS.values()},
    }


PROVIDER = Provider(
    name="check",
    title="Check batch verification",
    routes=ROUTES,
    store_factory=start,
    errors=errors.CATALOGUE,
    error_for_status=errors.StatusError.for_status,
    rate_limited=errors.RateLimited.for_retry,
    credentials=_credentials,
    options_type=CheckOptions,
    resources=resources,
)
