"""Passcreator's webhooks (once "REST Hooks"): subscriptions, ``pass_created``, signing, pull mode.

- **Subscribe**: ``POST /api/hook/subscribe`` (every template of the account) or
  ``/api/hook/subscribe/{templateIdentifier}`` (one template) with ``target_url``, ``event``,
  ``subscription_url``, ``retryEnabled`` and ``signPayload`` (both false by default) → 201
  echoing the subscription. ``pullMode: true`` needs no ``target_url`` and ignores
  ``retryEnabled`` and ``signPayload``. Subscriptions are records in the provider's store view.
- **Unsubscribe**: ``POST /api/hook/unsubscribe`` with ``{target_url}`` removes every
  subscription of the account to that URL (all events, all templates), as third-party clients
  report; ``{pullMode: true}`` (optionally with ``event``) removes pull subscriptions (inferred).
  Deliveries not yet made for a removed subscription are dropped.
- **Events**: ``pass_created``, one per pass a create or bulk create makes, due on the
  clock when the pass appears (a bulk's item k when the process reaches it), with the pass
  hooks page's fields. The other documented events are accepted on subscribe and never sent:
  templates are fixed here, and pass updates and wallet registrations are not modelled.
- **Push** goes through :mod:`simulator.webhooks` (on the clock, recorded in
  ``/_sim/webhooks``, the sink, delivery faults); a failed attempt is retried on the
  configured schedule only when ``retryEnabled`` (Passcreator documents no schedule).
- **signPayload**: the body is the payload with ``signature`` (hex RSA signature, SHA-1,
  PKCS#1 v1.5) and ``signedData`` (the JSON text that was signed) added, to verify with the
  public key of ``GET /api/hook/publickey`` (``{"publicKey": "<PEM>"}``); field names and
  the key endpoint as third-party clients observe them. The key is made once per process
  with ``cryptography`` and kept in the store, so that every worker on it signs with one key.
- **Pull mode**: events are kept as payloads: ``GET /api/v3/webhook-payload`` lists the
  unacknowledged ones (oldest first), ``POST /api/v3/webhook-payload/acknowledge`` with
  ``{identifiers}`` marks them handled; an unacknowledged payload expires 30 days after its
  event, an acknowledged one 24 hours after it was acknowledged (store expiry, on the clock).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.kit.provider import endpoint_for
from simulator.kit.retention import Retention
from simulator.kit.webhooks import PENDING, schedule
from simulator.providers.passcreator import errors, models
from simulator.providers.passcreator.models import (
    Account,
    Context,
    Pass,
    Passcreator,
    PasscreatorOptions,
)
from simulator.store import Store, Table

if TYPE_CHECKING:  # cryptography is loaded with the first key, made when first signing
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["HOOK_ROUTES", "passes_created", "public_key_pem"]

# The event types the webhooks overview and pass hooks pages name; only pass_created is sent.
EVENT_TYPES = (
    "pass_created",
    "pass_updated",
    "pass_voided",
    "first_pushnotification_registered",
    "pushnotification_registered",
    "pushnotification_unregistered",
    "pass_template_created",
    "pass_template_updated",
)
MAX_URL_LENGTH = 2000
MAX_SUBSCRIPTIONS = 100  # per account
MAX_LISTED = 1000  # pull payloads in one listing
MAX_ACKNOWLEDGED = 1000  # identifiers in one acknowledge
KEEP_UNACKNOWLEDGED = timedelta(days=30)
KEEP_ACKNOWLEDGED = timedelta(hours=24)
KEY_BITS = 2048
# Signatures made at once on the event loop; more go to a thread so that requests keep moving.
SIGN_INLINE = 16
# Pending pull payloads and deliveries read at a time when a subscription's are dropped.
SCAN_PAGE = 1000

endpoint = endpoint_for(PasscreatorOptions, Passcreator)


@dataclass(frozen=True, slots=True)
class Subscription:
    identifier: str
    account: str
    event: str
    target_url: str | None  # None in pull mode
    subscription_url: str | None
    template_id: str | None  # None: every template of the account
    retry: bool
    sign: bool
    pull: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PullPayload:
    """An event kept for a pull subscription; listed from ``created_at`` until acknowledged."""

    identifier: str
    account: str
    subscription: str
    event: str
    created_at: datetime
    body: str  # the payload, as JSON text
    acknowledged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    pem: str  # PKCS#8, unencrypted


SUBSCRIPTIONS = Table("hooks/subscriptions", Subscription)
PAYLOADS = Table("hooks/payloads", PullPayload)
KEYS = Table("hooks/keys", SigningKey)


# -- signing -------------------------------------------------------------------------------


@functools.cache
def _process_key() -> str:
    """This process's RSA key, made on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@functools.lru_cache(maxsize=8)
def _loaded(pem: str) -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


async def signing_key(store: Store) -> rsa.RSAPrivateKey:
    """The key the store holds: the first process to need one puts its own there."""
    held, _ = await store.put_if_absent(KEYS, "rsa", SigningKey(_process_key()))
    return _loaded(held.pem)


async def public_key_pem(store: Store) -> str:
    from cryptography.hazmat.primitives import serialization

    key = await signing_key(store)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def signed(key: rsa.RSAPrivateKey, payload: Mapping[str, object]) -> dict[str, object]:
    """The payload with ``signature`` (hex RSA-SHA1 of ``signedData``) and ``signedData``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    text = _json(payload)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA1())
    return {**payload, "signature": signature.hex(), "signedData": text}


def _sign_all(key: rsa.RSAPrivateKey, payloads: list[dict[str, object]]) -> list[object]:
    return [signed(key, p) for p in payloads]


# -- events --------------------------------------------------------------------------------


def pass_created_payload(account: Account, item: Pass) -> dict[str, object]:
    """What the pass hooks page lists for ``pass_created``; a pass sold elsewhere than
    Passcreator's shop has empty buyer fields."""
    values = dict(item.values)
    barcode = values.get("barcodeValue")
    names = {t.identifier: t.name for t in account.templates}
    return {
        "identifier": item.identifier,
        "passId": item.identifier,
        "uniqueIdentifier": barcode if isinstance(barcode, str) else item.identifier,
        "createdOn": models.format_time(item.created_at),
        "passTemplate": names.get(item.template_id, item.template_id),
        "userProvidedId": values.get("userProvidedId"),
        "buyerEmail": "",
        "buyerFirstName": "",
        "buyerLastName": "",
        "buyerStreet": "",
        "buyerZipCode": "",
        "buyerCity": "",
    }


async def passes_created(ctx: Context, account: Account, passes: Sequence[Pass]) -> None:
    """``pass_created`` for each of ``passes`` to each of the account's subscriptions to it,
    due when the pass appears: scheduled for push, kept for pull."""
    if not passes:
        return
    subs = [s for s in await subscriptions_of(ctx.store, account.id) if s.event == "pass_created"]
    pairs = [
        (item, sub)
        for item in passes
        for sub in subs
        if sub.template_id in (None, item.template_id)
    ]
    if not pairs:
        return
    payloads = [pass_created_payload(account, item) for item, _ in pairs]
    bodies: list[object] = list(payloads)
    to_sign = [i for i, (_, sub) in enumerate(pairs) if sub.sign and not sub.pull]
    if to_sign:
        key = await signing_key(ctx.store)
        chosen = [payloads[i] for i in to_sign]
        if len(chosen) <= SIGN_INLINE:
            made = _sign_all(key, chosen)
        else:
            made = await asyncio.to_thread(_sign_all, key, chosen)
        for i, body in zip(to_sign, made, strict=True):
            bodies[i] = body
    ids = await ctx.next_ids("hook-event", len(pairs))
    pulled = sum(1 for _, sub in pairs if sub.pull)
    async with ctx.store.transaction() as tx:
        if pulled:
            room = max(1, ctx.options.max_passes - pulled + 1)
            await Retention(KEEP_UNACKNOWLEDGED, room).make_room(tx, PAYLOADS)
        for (item, sub), number, body in zip(pairs, ids, bodies, strict=True):
            event_id = number.uuid()
            if sub.pull:
                kept = PullPayload(
                    event_id, account.id, sub.identifier, sub.event, item.created_at, _json(body)
                )
                expires = item.created_at + KEEP_UNACKNOWLEDGED
                await tx.put(PAYLOADS, event_id, kept, expires_at=expires)
                continue
            assert sub.target_url is not None
            await schedule(
                ctx,
                f"hook/{sub.identifier}/{item.identifier}",
                event_id=event_id,
                type=sub.event,
                target=sub.target_url,
                payload=body,
                due=item.created_at,
                store=tx,
                retry=sub.retry,
            )


# -- subscriptions -------------------------------------------------------------------------


async def subscriptions_of(store: Store, account: str) -> list[Subscription]:
    found: list[Subscription] = []
    after = None
    while True:
        page = await store.scan(SUBSCRIPTIONS, after=after, limit=SCAN_PAGE)
        found.extend(sub for _, sub in page.items if sub.account == account)
        if page.next is None:
            return found
        after = page.next


def _url(value: object, field: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise errors.InvalidBody(errors.HOOK_FIELD_MISSING.format(field=field))
        return None
    if not isinstance(value, str):
        raise errors.InvalidBody(errors.ITEM_FIELD_TYPE.format(field=field, kind="a string"))
    if len(value) > MAX_URL_LENGTH:
        raise errors.InvalidBody(
            errors.ITEM_VALUE_TOO_LONG.format(field=field, limit=MAX_URL_LENGTH)
        )
    import httpx  # loaded when a hook is first subscribed, not at start-up

    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise errors.InvalidBody(errors.HOOK_URL_INVALID.format(field=field))
    return value


def _boolean(body: Mapping[str, object], field: str) -> bool:
    value = body.get(field, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise errors.InvalidBody(errors.ITEM_FIELD_TYPE.format(field=field, kind="a boolean"))
    return value


def _event(body: Mapping[str, object]) -> str:
    event = body.get("event")
    if event is None or event == "":
        raise errors.InvalidBody(errors.HOOK_FIELD_MISSING.format(field="event"))
    if not isinstance(event, str) or event not in EVENT_TYPES:
        raise errors.InvalidBody(errors.HOOK_EVENT_UNKNOWN.format(events=", ".join(EVENT_TYPES)))
    return event


def new_subscription(
    identifier: str,
    account: Account,
    template_id: str | None,
    body: Mapping[str, object],
    now: datetime,
) -> Subscription:
    """The subscription a subscribe body asks for, or the 400 saying why not."""
    event = _event(body)
    pull = _boolean(body, "pullMode")
    subscription_url = _url(body.get("subscription_url"), "subscription_url", required=False)
    if pull:
        return Subscription(
            identifier, account.id, event, None, subscription_url, template_id,
            retry=False, sign=False, pull=True, created_at=now,
        )  # fmt: skip
    target = _url(body.get("target_url"), "target_url", required=True)
    return Subscription(
        identifier,
        account.id,
        event,
        target,
        subscription_url,
        template_id,
        retry=_boolean(body, "retryEnabled"),
        sign=_boolean(body, "signPayload"),
        pull=False,
        created_at=now,
    )


def subscription_body(sub: Subscription) -> dict[str, object]:
    return {
        "subscription_url": sub.subscription_url,
        "target_url": sub.target_url,
        "event": sub.event,
        "retryEnabled": sub.retry,
        "signPayload": sub.sign,
        "pullMode": sub.pull,
    }


async def _drop_pending(store: Store, sub: Subscription, now: datetime) -> None:
    """What a removed subscription still had to come: its deliveries, its future payloads."""
    table: Table[Any] = PAYLOADS if sub.pull else PENDING
    prefix = f"hook/{sub.identifier}/"
    after = None
    doomed: list[str] = []
    while True:
        page = await store.scan(table, after=after, limit=SCAN_PAGE)
        for key, value in page.items:
            if sub.pull:
                if value.subscription == sub.identifier and value.created_at > now:
                    doomed.append(key)
            elif key.startswith(prefix):
                doomed.append(key)
        if page.next is None:
            break
        after = page.next
    for key in doomed:
        await store.delete(table, key)


# -- parse ---------------------------------------------------------------------------------


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


async def _object_body(request: Request, ctx: Context) -> dict[str, object]:
    """The request body as a JSON object, read with the size cap."""
    limit = ctx.options.max_body_bytes
    too_large = errors.BodyTooLarge(errors.BODY_TOO_LARGE.format(limit=limit))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > limit:
            raise too_large
    if not raw.strip():
        raise errors.InvalidBody(errors.BODY_NOT_OBJECT)
    try:
        value = json.loads(bytes(raw), parse_constant=_reject_constant)
        _json(value).encode("utf-8")
    except (ValueError, RecursionError):
        raise errors.InvalidJson() from None
    if not isinstance(value, dict):
        raise errors.InvalidBody(errors.BODY_NOT_OBJECT)
    return value


def _authenticate(request: Request) -> Account:
    return models.authenticate(request.headers.get("authorization"))


# -- handlers ------------------------------------------------------------------------------


async def _subscribe(request: Request, ctx: Context, template_id: str | None) -> Response:
    account = _authenticate(request)
    if template_id is not None and not account.has_template(template_id):
        raise errors.ObjectNotFound()
    body = await _object_body(request, ctx)
    identifier = (await ctx.next_id("hook")).hex32()
    sub = new_subscription(identifier, account, template_id, body, ctx.now())
    async with ctx.store.transaction() as tx:
        if len(await subscriptions_of(tx, account.id)) >= MAX_SUBSCRIPTIONS:
            raise errors.InvalidBody(errors.HOOK_TOO_MANY.format(limit=MAX_SUBSCRIPTIONS))
        await tx.put(SUBSCRIPTIONS, identifier, sub)
    return JSONResponse(subscription_body(sub), status_code=201)


@endpoint
async def subscribe_webhook(request: Request, ctx: Context, pc: Passcreator) -> Response:
    return await _subscribe(request, ctx, None)


@endpoint
async def subscribe_template_webhook(request: Request, ctx: Context, pc: Passcreator) -> Response:
    return await _subscribe(request, ctx, request.path_params["templateIdentifier"])


@endpoint
async def unsubscribe_webhook(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = _authenticate(request)
    body = await _object_body(request, ctx)
    if _boolean(body, "pullMode"):
        event = _event(body) if body.get("event") is not None else None

        def chosen(sub: Subscription) -> bool:
            return sub.pull and event in (None, sub.event)

    else:
        target = _url(body.get("target_url"), "target_url", required=True)

        def chosen(sub: Subscription) -> bool:
            return not sub.pull and sub.target_url == target

    now = ctx.now()
    async with ctx.store.transaction() as tx:
        removed = [s for s in await subscriptions_of(tx, account.id) if chosen(s)]
        if not removed:
            raise errors.ObjectNotFound()
        for sub in removed:
            await tx.delete(SUBSCRIPTIONS, sub.identifier)
            await _drop_pending(tx, sub, now)
    return JSONResponse({"unsubscribed": len(removed)})


@endpoint
async def get_webhook_public_key(request: Request, ctx: Context, pc: Passcreator) -> Response:
    _authenticate(request)
    return JSONResponse({"publicKey": await public_key_pem(ctx.store)})


def _payload_body(payload: PullPayload) -> dict[str, object]:
    return {
        "identifier": payload.identifier,
        "event": payload.event,
        "createdOn": models.format_time(payload.created_at),
        "payload": json.loads(payload.body),
    }


@endpoint
async def list_webhook_payloads(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = _authenticate(request)
    now = ctx.now()
    found: list[PullPayload] = []
    after = None
    while True:
        page = await ctx.store.scan(PAYLOADS, after=after, limit=SCAN_PAGE)
        found.extend(
            p
            for _, p in page.items
            if p.account == account.id and p.acknowledged_at is None and p.created_at <= now
        )
        if page.next is None:
            break
        after = page.next
    found.sort(key=lambda p: p.created_at)  # stable: insertion order within an instant
    items = [_payload_body(p) for p in found[:MAX_LISTED]]
    return JSONResponse(errors.envelope(200, items, count=len(items)))


@endpoint
async def acknowledge_webhook_payloads(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = _authenticate(request)
    body = await _object_body(request, ctx)
    identifiers = body.get("identifiers")
    if (
        not isinstance(identifiers, list)
        or not 1 <= len(identifiers) <= MAX_ACKNOWLEDGED
        or not all(isinstance(i, str) and i for i in identifiers)
    ):
        raise errors.InvalidBody(errors.HOOK_IDENTIFIERS_INVALID.format(limit=MAX_ACKNOWLEDGED))
    now = ctx.now()
    acknowledged = 0
    async with ctx.store.transaction() as tx:
        for identifier in dict.fromkeys(identifiers):
            assert isinstance(identifier, str)
            found = await tx.get(PAYLOADS, identifier)
            if (
                found is None
                or found.account != account.id
                or found.acknowledged_at is not None
                or found.created_at > now
            ):
                continue
            done = replace(found, acknowledged_at=now)
            await tx.put(PAYLOADS, identifier, done, expires_at=now + KEEP_ACKNOWLEDGED)
            acknowledged += 1
    return JSONResponse(errors.envelope(200, {"acknowledged": acknowledged}))


HOOK_ROUTES = (
    Route("/api/hook/subscribe", subscribe_webhook, methods=["POST"]),
    Route("/api/hook/subscribe/{templateIdentifier}", subscribe_template_webhook, methods=["POST"]),
    Route("/api/hook/unsubscribe", unsubscribe_webhook, methods=["POST"]),
    Route("/api/hook/publickey", get_webhook_public_key, methods=["GET"]),
    Route("/api/v3/webhook-payload", list_webhook_payloads, methods=["GET"]),
    Route("/api/v3/webhook-payload/acknowledge", acknowledge_webhook_payloads, methods=["POST"]),
)
