"""Passcreator API v3 bulk operations (app.passcreator.com).

Modelled: the raw API key in ``Authorization`` (two test accounts, each with its templates);
``POST /api/v3/pass`` as a single create (``data`` an object; ``?async``) or a bulk create
(``data`` an array → a process identifier); the bulk update ``PATCH /api/v3/pass`` (``filter``
with a Query Language ``query``, and ``data``); the process poll ``GET /api/v3/process/{id}``
(``current`` grows with the clock at ``items_per_second``; "in progress" → "finished" or
"finished with errors", failed items keyed by userProvidedId or array index); the passes a
process makes or changes, which appear and change as the process reaches them
(``GET /api/v3/pass/{id}``, ``PATCH /api/v3/pass/{id}``, ``GET /api/v3/pass?query=``); the
seed page's process 627d21f7-e1a0-4085-84cb-130906cd097c, 250/1000 in at reset.

Not modelled: templates and projects as resources (the test templates are fixed; a
``projectId`` query matches nothing), pass deletion, voiding by barcode, push notifications,
``filter.fields``, pass files (the download links point at the public host and are not
served), rate limits (available as faults).
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.kit.context import ProviderContext
from simulator.kit.provider import Provider
from simulator.providers.passcreator import errors
from simulator.providers.passcreator.models import (
    TEST_ACCOUNTS,
    PasscreatorOptions,
    start,
)
from simulator.providers.passcreator.resources import resources
from simulator.providers.passcreator.routes import ROUTES


def _credentials(ctx: ProviderContext) -> Mapping[str, object]:
    main, other = TEST_ACCOUNTS
    return {
        "api_key": main.api_key,
        "template_id": main.templates[0].identifier,
        "templates": [{"identifier": t.identifier, "name": t.name} for t in main.templates],
        "other_account": {
            "api_key": other.api_key,
            "template_id": other.templates[0].identifier,
        },
    }


PROVIDER = Provider(
    name="passcreator",
    title="Passcreator API v3 bulk operations",
    routes=ROUTES,
    store_factory=start,
    errors=errors.CATALOGUE,
    error_for_status=errors.StatusError.for_status,
    rate_limited=errors.TooManyRequests.for_retry,
    credentials=_credentials,
    options_type=PasscreatorOptions,
    resources=resources,
)
