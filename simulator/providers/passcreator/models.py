"""Passcreator's records and rules: test accounts and their templates, passes, bulk processes.

A bulk process works through its items at ``items_per_second`` (divided by ``--time-scale``)::

    current = min(total, floor(elapsed * rate))        status "in progress" until current == total

a pure function of (createdOn, now, rate): nothing runs in the background. Everything about the
items is decided when the process is submitted; item k's outcome (its pass created or updated,
or its error) takes effect at the instant ``current`` passes k, and not before.

Pure: nothing here reads or writes the store. A handler loads the records, calls these rules
(which raise Passcreator's errors), saves what they return, and renders it.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Annotated

from simulator.ids import IdFactory
from simulator.kit import credentials
from simulator.kit.budget import Budget
from simulator.kit.context import ProviderContext
from simulator.kit.retention import Retention
from simulator.providers.passcreator import errors
from simulator.providers.passcreator.fakes import (
    SEED_PASSES,
    SEED_PROCESS,
    SEED_PROCESS_DONE,
    SEED_PROCESS_TOTAL,
    fail_text,
    generated_barcode,
    locked_text,
)
from simulator.settings import Range, SettingsError
from simulator.store import Table

__all__ = [
    "PASSES",
    "PROCESSES",
    "SEED_CHANGES",
    "TEST_ACCOUNTS",
    "USER_IDS",
    "Account",
    "Draft",
    "Holders",
    "Pass",
    "Passcreator",
    "PasscreatorOptions",
    "Process",
    "Template",
]

Scalar = str | int | float | bool | None
# A pass's field values, in order: (name, value) pairs, so that the record stays frozen.
Values = tuple[tuple[str, Scalar], ...]

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_PAGE_SIZE = 100
MAX_ID_LENGTH = 255
MAX_BARCODE_LENGTH = 2000
MAX_PROPERTY_LENGTH = 10_000
MAX_PROPERTY_NAME = 100
MAX_PROPERTIES = 100
MAX_PENDING_UPDATES = 100
# No instant is put further than this past a process's start, whatever the rate and time scale.
MAX_OFFSET_US = 100 * 365 * 86_400 * 10**6

STANDARD_FIELDS = ("userProvidedId", "barcodeValue", "groupingIdentifier", "voided")
CREATE_CONTROLS = frozenset({"templateId", "enforceUniqueUserProvidedId"})
# Fields the service computes: ignored when a client sends them.
COMPUTED_FIELDS = frozenset(
    {"identifier", "createdOn", "modifiedOn", "downloadPage", "iPhoneUri", "androidUri"}
)


@dataclass(frozen=True, slots=True)
class PasscreatorOptions:
    """Passcreator's knobs (``--option passcreator.<name>=<value>``)."""

    items_per_second: Annotated[float, Range(0.001, 1_000_000)] = 50.0
    max_bulk_items: Annotated[int, Range(1, 1_000_000)] = 10_000
    max_body_bytes: Annotated[int, Range(1024, 1_073_741_824)] = 10_000_000
    max_passes: Annotated[int, Range(1, 10_000_000)] = 100_000
    max_processes: Annotated[int, Range(1, 1_000_000)] = 10_000
    retention_days: Annotated[int, Range(0, 3650)] = 7
    # Bytes the stored passes, and the stored processes, may hold (kit.budget.size_of each).
    max_stored_bytes: Annotated[int, Range(1, 17_179_869_184)] = 64 * 1024 * 1024
    max_stored_process_bytes: Annotated[int, Range(1, 17_179_869_184)] = 64 * 1024 * 1024
    known_templates_only: bool = True
    page_size: Annotated[int, Range(1, MAX_PAGE_SIZE)] = 100
    public_base_url: str = "https://app.passcreator.com"

    def __post_init__(self) -> None:
        """The one rule between two options (each one's own range is declared on it)."""
        if self.max_bulk_items > self.max_passes:
            raise SettingsError("passcreator.max_bulk_items must be at most max_passes")


Context = ProviderContext[PasscreatorOptions]


@dataclass(frozen=True, slots=True)
class Template:
    identifier: str
    name: str


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    api_key: str
    templates: tuple[Template, ...]

    def has_template(self, template_id: str) -> bool:
        return any(t.identifier == template_id for t in self.templates)


TEST_ACCOUNTS = (
    Account(
        "test",
        "Passcreator test account",
        "pcsim-test-key-5b0e8c7a41d94e2f",
        (
            Template("2d1b5f7f-26df-41c6-980f-ed0709f1170d", "Membership Card"),
            Template("36d35326-16f6-4cc2-ae74-28dfc3873be3", "Event Ticket"),
        ),
    ),
    Account(
        "other",
        "Second test account",
        "pcsim-other-key-9c3d2a71e6b04f58",
        (Template("6fcf1fc9-48ef-4816-b60a-9d67eeb37fef", "Coffee Membership"),),
    ),
)
ACCOUNTS_BY_KEY = {account.api_key: account for account in TEST_ACCOUNTS}


@dataclass(frozen=True, slots=True)
class Update:
    """Field values a pass takes on at ``at``."""

    at: datetime
    values: Values


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass; it exists from ``created_at`` and takes on each update at its instant."""

    identifier: str
    account: str
    template_id: str
    created_at: datetime
    values: Values
    barcode_generated: bool
    modified_at: datetime
    updates: tuple[Update, ...] = ()

    def exists(self, now: datetime) -> bool:
        return now >= self.created_at

    def state(self, now: datetime) -> tuple[dict[str, Scalar], datetime]:
        """The field values and the last-modified instant as of ``now``."""
        values, modified = dict(self.values), self.modified_at
        for update in self.updates:
            if update.at > now:
                break
            values.update(update.values)
            modified = max(modified, update.at)
        return values, modified

    def final_user_provided_id(self) -> Scalar:
        """The userProvidedId once every update, pending ones included, has applied."""
        value = dict(self.values).get("userProvidedId")
        for update in self.updates:
            value = dict(update.values).get("userProvidedId", value)
        return value

    def scheduled(self, update: Update, now: datetime) -> Pass:
        """This pass with ``update`` to come; what is already in effect is folded in, so the
        pending list stays short."""
        updates = list(self.updates)
        bisect.insort(updates, update, key=lambda u: u.at)
        due = sum(1 for u in updates if u.at <= now)
        due = max(due, len(updates) - MAX_PENDING_UPDATES)
        values, modified = dict(self.values), self.modified_at
        for done in updates[:due]:
            values.update(done.values)
            modified = max(modified, done.at)
        return dataclasses.replace(
            self, values=tuple(values.items()), modified_at=modified, updates=tuple(updates[due:])
        )


@dataclass(frozen=True, slots=True)
class Failure:
    """An item that fails: at ``position`` in the process, reported under ``key``."""

    position: int
    key: str
    message: str


_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Process:
    """A bulk operation; its progress is derived from the clock."""

    identifier: str
    owner: str | None
    created_at: datetime
    total: int
    step_us: Fraction  # microseconds per item; 0 when time is scaled to nothing
    failures: tuple[Failure, ...] = ()

    def current(self, now: datetime) -> int:
        if self.step_us == 0:
            return self.total
        elapsed = (now - self.created_at) // _MICROSECOND
        if elapsed <= 0:
            return 0
        # floor(elapsed / (n/d)) in integers: the same value, without Fraction's division.
        step = self.step_us
        return min(self.total, elapsed * step.denominator // step.numerator)

    def reached_at(self, count: int) -> datetime:
        """The first instant at which ``current`` is at least ``count``."""
        offset = min(MAX_OFFSET_US, math.ceil(count * self.step_us))
        return self.created_at + timedelta(microseconds=offset)

    def finished_at(self) -> datetime:
        return self.reached_at(self.total)

    def status(self, now: datetime) -> str:
        return self.status_at(self.current(now))

    def status_at(self, current: int) -> str:
        """The status once ``current`` items are processed."""
        if current < self.total:
            return "in progress"
        return "finished with errors" if self.failures else "finished"

    def errors(self, now: datetime) -> dict[str, str] | None:
        return self.errors_at(self.current(now))

    def errors_at(self, current: int) -> dict[str, str] | None:
        """Failures of the first ``current`` items, by key (the first failure of a key wins)."""
        if not self.failures:
            return None
        shown: dict[str, str] = {}
        for failure in self.failures:
            if failure.position >= current:
                break
            shown.setdefault(failure.key, failure.message)
        return shown or None


@dataclass(frozen=True, slots=True)
class Holders:
    """The passes that hold (or will hold) one userProvidedId of one account."""

    identifiers: tuple[str, ...] = ()


PROCESSES = Table("processes", Process)
PASSES = Table("passes", Pass)
# A seeded pass a client changed: kept apart from PASSES, so that it is never evicted.
SEED_CHANGES = Table("seed_passes", Pass)
USER_IDS = Table("user_ids", Holders)


def user_id_key(account: str, user_id: str) -> str:
    return f"{account}/{user_id}"


@dataclass(frozen=True, slots=True)
class Draft:
    """A create item that passed validation."""

    template_id: str
    values: Values
    barcode_generated: bool


@dataclass
class Passcreator:
    """What one app's Passcreator holds besides its records, fixed when it starts (or
    resets): the seed page's process and the seeded passes (in their order)."""

    seed_process: Process
    seed_passes: dict[str, Pass]


def step_us(ctx: Context) -> Fraction:
    """Microseconds per item for a process started now (0 when time is scaled away)."""
    scale = _decimal(ctx.settings.time_scale)
    return Fraction(10**6) * scale / _decimal(ctx.options.items_per_second)


def _decimal(value: float) -> Fraction:
    return Fraction(repr(float(value)))


def start(ctx: Context) -> Passcreator:
    """The provider record's ``store_factory``."""
    if not math.isfinite(ctx.settings.time_scale):
        raise SettingsError("time_scale must be finite")
    now = ctx.now()
    seed = Process(SEED_PROCESS, None, now, SEED_PROCESS_TOTAL, step_us(ctx))
    # Started just long enough ago to be exactly SEED_PROCESS_DONE items in.
    seed = dataclasses.replace(seed, created_at=now - (seed.reached_at(SEED_PROCESS_DONE) - now))
    account = TEST_ACCOUNTS[0]
    passes = {}
    for raw in SEED_PASSES:
        values: dict[str, Scalar] = {"groupingIdentifier": None, "voided": False}
        values.update((k, v) for k, v in raw.items() if k != "identifier")
        passes[str(raw["identifier"])] = Pass(
            str(raw["identifier"]),
            account.id,
            account.templates[0].identifier,
            now - timedelta(days=1),
            tuple(values.items()),
            barcode_generated=True,
            modified_at=now - timedelta(days=1),
        )
    return Passcreator(seed, passes)


@functools.lru_cache(maxsize=4096)
def format_time(instant: datetime) -> str:
    """Passcreator's ``Y-m-d H:i:s``, in UTC (a pure function of the instant: cached)."""
    return instant.astimezone(UTC).strftime(TIME_FORMAT)


# -- auth ----------------------------------------------------------------------------------


def authenticate(header: str | None) -> Account:
    """The account whose raw API key is the ``Authorization`` header, or the v3 401."""
    key = (header or "").strip()
    if not key:
        raise errors.MissingApiKey()
    if key[:7].lower() == "bearer ":
        raise errors.BearerPrefixNotAccepted()
    account = credentials.lookup(ACCOUNTS_BY_KEY, key)
    if account is None:
        raise errors.InvalidApiKey()
    return account


# -- passes --------------------------------------------------------------------------------


def owned_pass(found: Pass | None, account: Account, now: datetime) -> Pass:
    """The pass, if ``account`` holds it and it exists by now; else the v3 404."""
    if found is None or found.account != account.id or not found.exists(now):
        raise errors.ObjectNotFound()
    return found


def visible(item: Pass, account: Account, now: datetime) -> bool:
    return item.account == account.id and item.exists(now)


def pass_fields(item: Pass, now: datetime) -> dict[str, Scalar]:
    """The pass as the Query Language sees it (and, with the links, as it is rendered)."""
    values, modified = item.state(now)
    properties = {k: v for k, v in values.items() if k not in STANDARD_FIELDS}
    return {
        "identifier": item.identifier,
        "templateId": item.template_id,
        "userProvidedId": values.get("userProvidedId"),
        "barcodeValue": values.get("barcodeValue"),
        "groupingIdentifier": values.get("groupingIdentifier"),
        "voided": bool(values.get("voided")),
        "createdOn": format_time(item.created_at),
        "modifiedOn": format_time(modified),
        **properties,
    }


def new_pass(
    ids: IdFactory, identifier: str, account: Account, draft: Draft, created_at: datetime
) -> Pass:
    """The pass a draft makes, existing from ``created_at``."""
    values = dict(draft.values)
    if draft.barcode_generated:
        values["barcodeValue"] = generated_barcode(ids, identifier)
    return Pass(
        identifier,
        account.id,
        draft.template_id,
        created_at,
        tuple(values.items()),
        draft.barcode_generated,
        modified_at=created_at,
    )


def updated(item: Pass, values: Values, now: datetime) -> Pass:
    """A single update: applies at once, or fails with the update's 400."""
    message = update_failure(values, item.state(now)[0])
    if message is not None:
        raise errors.InvalidItem(message)
    return item.scheduled(Update(now, values), now)


def passes_room(options: PasscreatorOptions, seeds: int) -> Budget:
    """The caps on stored passes: the seeded ones count towards ``max_passes`` but are never
    dropped (nor stored). Passes have no retention: beyond the caps the oldest go."""
    return Budget(max(0, options.max_passes - seeds), options.max_stored_bytes)


def processes_room(options: PasscreatorOptions) -> Budget:
    """The caps on stored processes; the seed page's counts towards ``max_processes``. A
    process is never dropped before its retention ends: at the caps a new one is refused."""
    return Budget(options.max_processes - 1, options.max_stored_process_bytes)


def processes_retention(options: PasscreatorOptions) -> Retention:
    """Finished processes are kept ``retention_days``."""
    return Retention(timedelta(days=options.retention_days), options.max_processes - 1)


# The Retry-After of a request refused because the stored processes are at their caps.
RETRY_WHEN_FULL = 60


def store_full() -> errors.TooManyRequests:
    """Passcreator's 429 (inferred: no limits are documented): the stored processes fill
    ``max_processes`` or ``max_stored_process_bytes``, or one request's passes alone pass
    ``max_passes`` or ``max_stored_bytes``."""
    return errors.TooManyRequests(RETRY_WHEN_FULL)


def user_ids_of(item: Pass) -> set[str]:
    """Every userProvidedId a pass takes on, its pending updates' included."""
    values = [dict(item.values), *(dict(u.values) for u in item.updates)]
    return {u for v in values if isinstance(u := v.get("userProvidedId"), str) and u}


def process_expires_at(options: PasscreatorOptions, process: Process) -> datetime:
    # Kept through the whole last instant of its retention, gone just after it.
    ended = process.finished_at() + timedelta(microseconds=1)
    return processes_retention(options).expires_at(ended)


# -- bulk processes ------------------------------------------------------------------------


def owned_process(process: Process | None, account: Account) -> Process:
    if process is None or process.owner not in (None, account.id):
        raise errors.ObjectNotFound()
    return process


def check_bulk(options: PasscreatorOptions, items: list[object]) -> None:
    if not items:
        raise errors.InvalidBody(errors.BULK_EMPTY)
    if len(items) > options.max_bulk_items:
        raise errors.InvalidBody(errors.BULK_TOO_LARGE.format(limit=options.max_bulk_items))


def new_process(ctx: Context, identifier: str, account: Account, total: int) -> Process:
    """A process of ``total`` items started now; its failures are added as they are decided."""
    return Process(identifier, account.id, ctx.now(), total, step_us(ctx))


def bulk_create(
    ctx: Context,
    process: Process,
    account: Account,
    items: list[object],
    identifiers: list[str],
    in_use: set[str],
) -> tuple[Process, list[Pass]]:
    """Validate every item now; item k's pass appears when the process reaches it.

    ``in_use`` holds the userProvidedIds of the account's passes; the bulk's own passes are
    added to it as they are made, so a later item that enforces uniqueness sees them.
    """
    failures = []
    made = []
    for index, raw in enumerate(items):
        draft, messages = check_item(ctx.options, account, raw, in_use.__contains__)
        if draft is None:
            failures.append(Failure(index, _item_key(raw, index), messages[0]))
            continue
        created = new_pass(
            ctx.ids, identifiers[index], account, draft, process.reached_at(index + 1)
        )
        made.append(created)
        user_id = dict(created.values).get("userProvidedId")
        if isinstance(user_id, str) and user_id:
            in_use.add(user_id)
    return dataclasses.replace(process, failures=tuple(failures)), made


def bulk_update(
    process: Process, selected: list[Pass], values: Values, now: datetime
) -> tuple[Process, list[Pass]]:
    """Apply ``values`` to each selected pass when the process reaches it, or fail it."""
    failures = []
    changed = []
    for index, item in enumerate(selected):
        current, _ = item.state(now)
        message = update_failure(values, current)
        if message is not None:
            key = current.get("userProvidedId") or item.identifier
            failures.append(Failure(index, str(key), message))
        else:
            changed.append(item.scheduled(Update(process.reached_at(index + 1), values), now))
    return dataclasses.replace(process, failures=tuple(failures)), changed


# -- validation ----------------------------------------------------------------------------


def check_item(
    options: PasscreatorOptions, account: Account, raw: object, in_use: Callable[[str], bool]
) -> tuple[Draft | None, list[str]]:
    """A create item as Passcreator validates it: the draft, or the messages why not."""
    if not isinstance(raw, dict):
        return None, [errors.ITEM_NOT_OBJECT]
    messages = []
    template_id = raw.get("templateId")
    if template_id is None or template_id == "":
        messages.append(errors.ITEM_TEMPLATE_ID_MISSING)
    elif not isinstance(template_id, str):
        messages.append(errors.ITEM_FIELD_TYPE.format(field="templateId", kind="a string"))
    elif options.known_templates_only and not account.has_template(template_id):
        shown = template_id if len(template_id) <= 100 else f"{template_id[:100]}..."
        messages.append(errors.ITEM_TEMPLATE_NOT_FOUND.format(template_id=shown))
    enforce = raw.get("enforceUniqueUserProvidedId")
    if enforce is not None and not isinstance(enforce, bool):
        messages.append(
            errors.ITEM_FIELD_TYPE.format(field="enforceUniqueUserProvidedId", kind="a boolean")
        )
    values, field_messages = _check_values(raw)
    messages += field_messages
    if messages:
        return None, messages
    chosen = [fail_text(v) for k, v in values.items() if k != "userProvidedId"]
    failed = [text for text in chosen if text is not None]
    if failed:
        return None, [failed[0] or errors.ITEM_FAILED]
    user_id = values.get("userProvidedId")
    if enforce and isinstance(user_id, str) and in_use(user_id):
        return None, [errors.ITEM_USER_PROVIDED_ID_IN_USE.format(user_provided_id=user_id)]
    generated = not isinstance(values.get("barcodeValue"), str)
    values.setdefault("userProvidedId", None)
    values.setdefault("groupingIdentifier", None)
    values.setdefault("voided", False)
    assert isinstance(template_id, str)
    return Draft(template_id, tuple(values.items()), generated), []


def enforced_user_ids(items: list[object]) -> set[str]:
    """The userProvidedIds that items asking for uniqueness name (to look up before deciding)."""
    return {
        user_id
        for raw in items
        if isinstance(raw, dict)
        and raw.get("enforceUniqueUserProvidedId") is True
        and isinstance(user_id := raw.get("userProvidedId"), str)
    }


def check_update(raw: object) -> Values:
    """Update data: the values to set, or a 400 (it applies to every selected pass alike)."""
    if raw is None:
        raise errors.InvalidBody(errors.DATA_MISSING)
    if not isinstance(raw, dict):
        raise errors.InvalidBody(errors.UPDATE_DATA_INVALID)
    if "templateId" in raw:
        raise errors.InvalidBody(errors.TEMPLATE_ID_READ_ONLY)
    values, messages = _check_values(raw)
    if messages:
        raise errors.InvalidBody(*messages)
    return tuple(values.items())


def update_failure(values: Values, current: Mapping[str, Scalar]) -> str | None:
    for key, value in values:
        text = fail_text(value) if key != "userProvidedId" else None
        if text is not None:
            return text or errors.UPDATE_FAILED
    locked = locked_text(current.get("userProvidedId"))
    if locked is not None:
        return locked or errors.UPDATE_FAILED
    return None


def _item_key(raw: object, index: int) -> str:
    """How a failed item is keyed in ``data.errors``: its userProvidedId, else its index."""
    if isinstance(raw, dict):
        user_id = raw.get("userProvidedId")
        if isinstance(user_id, str) and user_id:
            return user_id
    return str(index)


def _check_values(raw: Mapping[str, object]) -> tuple[dict[str, Scalar], list[str]]:
    """The pass values in ``raw`` (standard fields and additional properties) and any messages."""
    values: dict[str, Scalar] = {}
    messages: list[str] = []
    properties = 0
    for key, value in raw.items():
        if key in CREATE_CONTROLS or key in COMPUTED_FIELDS:
            continue
        if key == "voided":
            if not isinstance(value, bool):
                messages.append(errors.ITEM_FIELD_TYPE.format(field=key, kind="a boolean"))
            else:
                values[key] = value
            continue
        if key in STANDARD_FIELDS:
            limit = MAX_BARCODE_LENGTH if key == "barcodeValue" else MAX_ID_LENGTH
            if value is None or value == "":
                values[key] = None
            elif not isinstance(value, str):
                messages.append(errors.ITEM_FIELD_TYPE.format(field=key, kind="a string"))
            elif len(value) > limit:
                messages.append(errors.ITEM_VALUE_TOO_LONG.format(field=key, limit=limit))
            else:
                values[key] = value
            continue
        properties += 1
        if not 0 < len(key) <= MAX_PROPERTY_NAME:
            messages.append(
                errors.ITEM_VALUE_TOO_LONG.format(field="A property name", limit=MAX_PROPERTY_NAME)
            )
        elif value is not None and not isinstance(value, str | int | float | bool):
            messages.append(
                errors.ITEM_FIELD_TYPE.format(field=key, kind="a string, number, boolean or null")
            )
        elif isinstance(value, str) and len(value) > MAX_PROPERTY_LENGTH:
            messages.append(errors.ITEM_VALUE_TOO_LONG.format(field=key, limit=MAX_PROPERTY_LENGTH))
        else:
            values[key] = value
    if properties > MAX_PROPERTIES:
        messages.append(errors.ITEM_TOO_MANY_PROPERTIES.format(limit=MAX_PROPERTIES))
    return values, messages
