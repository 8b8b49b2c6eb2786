"""Passcreator's state: test accounts and their templates, passes, and bulk processes.

A bulk process works through its items at ``items_per_second`` (divided by ``--time-scale``)::

    current = min(total, floor(elapsed * rate))        status "in progress" until current == total

a pure function of (createdOn, now, rate): nothing runs in the background. Everything about the
items is decided when the process is submitted; item k's outcome (its pass created or updated,
or its error) takes effect at the instant ``current`` passes k, and not before.
"""

from __future__ import annotations

import bisect
import math
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from simulator.kit.context import ProviderContext
from simulator.providers.passcreator import errors
from simulator.providers.passcreator.fakes import (
    SEED_PASSES,
    SEED_PROCESS,
    SEED_PROCESS_DONE,
    SEED_PROCESS_TOTAL,
    fail_text,
    generated_barcode,
    locked_text,
    pass_links,
)
from simulator.providers.passcreator.query import Query
from simulator.settings import SettingsError

__all__ = [
    "TEST_ACCOUNTS",
    "Account",
    "Pass",
    "PasscreatorOptions",
    "PasscreatorStore",
    "Process",
    "Template",
]

Scalar = str | int | float | bool | None

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

    items_per_second: float = 50.0
    max_bulk_items: int = 10_000
    max_body_bytes: int = 10_000_000
    max_passes: int = 100_000
    max_processes: int = 10_000
    retention_days: int = 7
    known_templates_only: bool = True
    page_size: int = 100
    public_base_url: str = "https://app.passcreator.com"

    def __post_init__(self) -> None:
        """Fail fast on values that cannot work (at start-up, or a change through /_sim)."""
        rate = self.items_per_second
        if not (math.isfinite(rate) and 0.001 <= rate <= 1_000_000):
            raise SettingsError("passcreator.items_per_second must be from 0.001 to 1000000")
        if not 1 <= self.max_bulk_items <= self.max_passes:
            raise SettingsError("passcreator.max_bulk_items must be from 1 to max_passes")
        if self.max_body_bytes < 1024 or self.max_processes < 1 or self.retention_days < 0:
            raise SettingsError(
                "passcreator: max_body_bytes >= 1024, max_processes >= 1, retention_days >= 0"
            )
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise SettingsError(f"passcreator.page_size must be from 1 to {MAX_PAGE_SIZE}")


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


@dataclass(slots=True)
class Update:
    """Field values a pass takes on at ``at``."""

    at: datetime
    values: dict[str, Scalar]


@dataclass
class Pass:
    """One pass; it exists from ``created_at`` and takes on each update at its instant."""

    identifier: str
    account: str
    template_id: str
    created_at: datetime
    values: dict[str, Scalar]
    barcode_generated: bool
    modified_at: datetime
    updates: list[Update] = field(default_factory=list)
    pinned: bool = False

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
        value = self.values.get("userProvidedId")
        for update in self.updates:
            value = update.values.get("userProvidedId", value)
        return value

    def schedule(self, update: Update, now: datetime) -> None:
        bisect.insort(self.updates, update, key=lambda u: u.at)
        # Fold what is already in effect, so the pending list stays short.
        due = sum(1 for u in self.updates if u.at <= now)
        due = max(due, len(self.updates) - MAX_PENDING_UPDATES)
        for done in self.updates[:due]:
            self.values.update(done.values)
            self.modified_at = max(self.modified_at, done.at)
        del self.updates[:due]


@dataclass(frozen=True, slots=True)
class Failure:
    """An item that fails: at ``position`` in the process, reported under ``key``."""

    position: int
    key: str
    message: str


@dataclass
class Process:
    """A bulk operation; its progress is derived from the clock."""

    identifier: str
    owner: str | None
    created_at: datetime
    total: int
    step_us: Fraction  # microseconds per item; 0 when time is scaled to nothing
    failures: list[Failure] = field(default_factory=list)
    pinned: bool = False

    def current(self, now: datetime) -> int:
        if self.step_us == 0:
            return self.total
        elapsed = (now - self.created_at) // timedelta(microseconds=1)
        if elapsed <= 0:
            return 0
        return min(self.total, math.floor(elapsed / self.step_us))

    def reached_at(self, count: int) -> datetime:
        """The first instant at which ``current`` is at least ``count``."""
        offset = min(MAX_OFFSET_US, math.ceil(count * self.step_us))
        return self.created_at + timedelta(microseconds=offset)

    def finished_at(self) -> datetime:
        return self.reached_at(self.total)

    def status(self, now: datetime) -> str:
        if self.current(now) < self.total:
            return "in progress"
        return "finished with errors" if self.failures else "finished"

    def errors(self, now: datetime) -> dict[str, str] | None:
        """Failures of the items processed so far, by key (the first failure of a key wins)."""
        current = self.current(now)
        shown: dict[str, str] = {}
        for failure in self.failures:
            if failure.position >= current:
                break
            shown.setdefault(failure.key, failure.message)
        return shown or None


@dataclass(frozen=True, slots=True)
class Draft:
    """A create item that passed validation."""

    template_id: str
    values: dict[str, Scalar]
    barcode_generated: bool


def format_time(instant: datetime) -> str:
    """Passcreator's ``Y-m-d H:i:s``, in UTC."""
    return instant.astimezone(UTC).strftime(TIME_FORMAT)


def _decimal(value: float) -> Fraction:
    return Fraction(repr(float(value)))


@dataclass
class PasscreatorStore:
    ctx: ProviderContext
    accounts: dict[str, Account] = field(init=False)
    passes: dict[str, Pass] = field(init=False)
    processes: dict[str, Process] = field(init=False)
    user_ids: dict[tuple[str, str], set[str]] = field(init=False)

    @property
    def options(self) -> PasscreatorOptions:
        """Read live: ``/_sim/options`` may change them while the simulator runs."""
        options: PasscreatorOptions = self.ctx.options
        return options

    def step_us(self) -> Fraction:
        """Microseconds per item for a process started now (0 when time is scaled away)."""
        scale = _decimal(self.ctx.settings.time_scale)
        return Fraction(10**6) * scale / _decimal(self.options.items_per_second)

    def __post_init__(self) -> None:
        if not math.isfinite(self.ctx.settings.time_scale):
            raise SettingsError("time_scale must be finite")
        self.accounts = {a.api_key: a for a in TEST_ACCOUNTS}
        self.passes = {}
        self.processes = {}
        self.user_ids = {}
        now = self.now()
        seed = Process(SEED_PROCESS, None, now, SEED_PROCESS_TOTAL, self.step_us(), pinned=True)
        # Started just long enough ago to be exactly SEED_PROCESS_DONE items in.
        seed.created_at = now - (seed.reached_at(SEED_PROCESS_DONE) - now)
        self.processes[seed.identifier] = seed
        account = TEST_ACCOUNTS[0]
        for raw in SEED_PASSES:
            values: dict[str, Scalar] = {"groupingIdentifier": None, "voided": False}
            values.update((k, v) for k, v in raw.items() if k != "identifier")
            self._add_pass(
                Pass(
                    str(raw["identifier"]),
                    account.id,
                    account.templates[0].identifier,
                    now - timedelta(days=1),
                    values,
                    barcode_generated=True,
                    modified_at=now - timedelta(days=1),
                    pinned=True,
                )
            )

    def now(self) -> datetime:
        return self.ctx.clock.now()

    # -- auth ------------------------------------------------------------------------------

    def authenticate(self, header: str | None) -> Account:
        """The account whose raw API key is the ``Authorization`` header, or the v3 401."""
        key = (header or "").strip()
        if not key:
            raise errors.MissingApiKey()
        if key[:7].lower() == "bearer ":
            raise errors.BearerPrefixNotAccepted()
        for api_key, account in self.accounts.items():
            if secrets.compare_digest(api_key.encode(), key.encode()):
                return account
        raise errors.InvalidApiKey()

    # -- passes ----------------------------------------------------------------------------

    def pass_for(self, identifier: str, account: Account) -> Pass:
        found = self.passes.get(identifier)
        if found is None or found.account != account.id or not found.exists(self.now()):
            raise errors.ObjectNotFound()
        return found

    def pass_fields(self, item: Pass, now: datetime) -> dict[str, Scalar]:
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

    def pass_body(self, item: Pass, *, hide_generated_barcode: bool = False) -> dict[str, object]:
        fields: dict[str, object] = dict(self.pass_fields(item, self.now()))
        if hide_generated_barcode and item.barcode_generated:
            # Created asynchronously: the service does not know the value yet when it answers.
            fields["barcodeValue"] = None
        links = pass_links(self.options.public_base_url, item.identifier)
        ordered = {k: fields.pop(k) for k in ("identifier", "templateId", *STANDARD_FIELDS)}
        ordered.update({k: fields.pop(k) for k in ("createdOn", "modifiedOn")})
        return {**ordered, **links, **fields}

    def list_passes(self, account: Account, query: Query) -> Iterator[Pass]:
        now = self.now()
        for item in self.passes.values():
            visible = item.account == account.id and item.exists(now)
            if visible and query.matches(self.pass_fields(item, now)):
                yield item

    def create_one(self, account: Account, raw: object) -> Pass:
        """A single create: the pass exists at once, or the item's messages come back as 400."""
        draft, messages = self.check_item(account, raw)
        if draft is None:
            raise errors.InvalidItem(*messages)
        self.evict(incoming=1)
        return self._new_pass(account, draft, self.now())

    def update_one(self, account: Account, identifier: str, raw: object) -> Pass:
        item = self.pass_for(identifier, account)
        values = self.check_update(raw)
        now = self.now()
        message = self._update_failure(values, item.state(now)[0])
        if message is not None:
            raise errors.InvalidItem(message)
        self._schedule(item, Update(now, values), now)
        return item

    # -- bulk processes --------------------------------------------------------------------

    def process_for(self, identifier: str, account: Account) -> Process:
        process = self.processes.get(identifier)
        if process is None or process.owner not in (None, account.id):
            raise errors.ObjectNotFound()
        return process

    def process_body(self, process: Process) -> dict[str, object]:
        now = self.now()
        return {
            "current": process.current(now),
            "total": process.total,
            "createdOn": format_time(process.created_at),
            "status": process.status(now),
            "errors": process.errors(now),
        }

    def create_bulk(self, account: Account, items: list[object]) -> Process:
        """Validate every item now; item k's pass appears when the process reaches it."""
        if not items:
            raise errors.InvalidBody(errors.BULK_EMPTY)
        if len(items) > self.options.max_bulk_items:
            raise errors.InvalidBody(
                errors.BULK_TOO_LARGE.format(limit=self.options.max_bulk_items)
            )
        self.evict(incoming=len(items))
        process = self._new_process(account, len(items))
        for index, raw in enumerate(items):
            draft, messages = self.check_item(account, raw)
            if draft is None:
                process.failures.append(Failure(index, _item_key(raw, index), messages[0]))
            else:
                self._new_pass(account, draft, process.reached_at(index + 1))
        return process

    def update_bulk(self, account: Account, query: Query, raw: object) -> Process:
        """Apply ``raw`` to every pass ``query`` selects now, each when the process reaches it."""
        values = self.check_update(raw)
        now = self.now()
        selected = list(self.list_passes(account, query))
        self.evict()
        process = self._new_process(account, len(selected))
        for index, item in enumerate(selected):
            current, _ = item.state(now)
            message = self._update_failure(values, current)
            if message is not None:
                key = current.get("userProvidedId") or item.identifier
                process.failures.append(Failure(index, str(key), message))
            else:
                self._schedule(item, Update(process.reached_at(index + 1), values), now)
        return process

    # -- validation ------------------------------------------------------------------------

    def check_item(self, account: Account, raw: object) -> tuple[Draft | None, list[str]]:
        """A create item as Passcreator validates it: the draft, or the messages why not."""
        if not isinstance(raw, dict):
            return None, [errors.ITEM_NOT_OBJECT]
        messages = []
        template_id = raw.get("templateId")
        if template_id is None or template_id == "":
            messages.append(errors.ITEM_TEMPLATE_ID_MISSING)
        elif not isinstance(template_id, str):
            messages.append(errors.ITEM_FIELD_TYPE.format(field="templateId", kind="a string"))
        elif self.options.known_templates_only and not account.has_template(template_id):
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
        if enforce and isinstance(user_id, str) and self._user_id_in_use(account, user_id):
            return None, [errors.ITEM_USER_PROVIDED_ID_IN_USE.format(user_provided_id=user_id)]
        generated = not isinstance(values.get("barcodeValue"), str)
        values.setdefault("userProvidedId", None)
        values.setdefault("groupingIdentifier", None)
        values.setdefault("voided", False)
        assert isinstance(template_id, str)
        return Draft(template_id, values, generated), []

    def check_update(self, raw: object) -> dict[str, Scalar]:
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
        return values

    def _update_failure(
        self, values: Mapping[str, Scalar], current: Mapping[str, Scalar]
    ) -> str | None:
        for key, value in values.items():
            text = fail_text(value) if key != "userProvidedId" else None
            if text is not None:
                return text or errors.UPDATE_FAILED
        locked = locked_text(current.get("userProvidedId"))
        if locked is not None:
            return locked or errors.UPDATE_FAILED
        return None

    def _user_id_in_use(self, account: Account, user_id: str) -> bool:
        holders = self.user_ids.get((account.id, user_id), set())
        for identifier in list(holders):
            item = self.passes.get(identifier)
            if item is not None and item.final_user_provided_id() == user_id:
                return True
            holders.discard(identifier)
        return False

    # -- storage ---------------------------------------------------------------------------

    def _new_pass(self, account: Account, draft: Draft, created_at: datetime) -> Pass:
        identifier = self.ctx.ids.uuid()
        values = dict(draft.values)
        if draft.barcode_generated:
            values["barcodeValue"] = generated_barcode(self.ctx.ids, identifier)
        item = Pass(
            identifier,
            account.id,
            draft.template_id,
            created_at,
            values,
            draft.barcode_generated,
            modified_at=created_at,
        )
        self._add_pass(item)
        return item

    def _add_pass(self, item: Pass) -> None:
        self.passes[item.identifier] = item
        self._index_user_id(item.account, item.identifier, item.values.get("userProvidedId"))

    def _schedule(self, item: Pass, update: Update, now: datetime) -> None:
        item.schedule(update, now)
        self._index_user_id(item.account, item.identifier, update.values.get("userProvidedId"))

    def _index_user_id(self, account: str, identifier: str, user_id: Scalar) -> None:
        if isinstance(user_id, str) and user_id:
            self.user_ids.setdefault((account, user_id), set()).add(identifier)

    def _new_process(self, account: Account, total: int) -> Process:
        process = Process(self.ctx.ids.uuid(), account.id, self.now(), total, self.step_us())
        self.processes[process.identifier] = process
        return process

    def evict(self, incoming: int = 0) -> None:
        """Drop finished processes past retention, then the oldest processes and passes over
        their caps (the seeded ones stay). Passes have no retention: only the cap applies."""
        cutoff = self.now() - timedelta(days=self.options.retention_days)
        expired = [
            k for k, p in self.processes.items() if not p.pinned and p.finished_at() < cutoff
        ]
        for identifier in expired:
            del self.processes[identifier]
        if len(self.processes) >= self.options.max_processes:
            unpinned = [k for k, p in self.processes.items() if not p.pinned]
            for identifier in unpinned[: len(self.processes) - self.options.max_processes + 1]:
                del self.processes[identifier]
        excess = len(self.passes) + incoming - self.options.max_passes
        if excess > 0:
            oldest = (k for k, p in self.passes.items() if not p.pinned)
            for identifier in [k for _, k in zip(range(excess), oldest, strict=False)]:
                del self.passes[identifier]


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
