"""Scenarios: a sandbox that starts from a declarative file.

A scenario (YAML or JSON, checked against ``scenario.schema.json``, served at
``/_sim/scenario.schema.json``) gives a sandbox its clock, seed, provider options, faults and
objects in given states at its ``start`` instant. The objects are made through each
provider's own HTTP API, in process through the app itself, on the sandbox's manual clock:
each is made at the instant that leaves it where the scenario says at ``start`` (a Deepvue
batch 40% done is submitted 40% of its processing time before ``start``), in time order;
then the clock is set to ``start``, the faults are scheduled (so that making the objects
spends none of them) and the journal is cleared.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from starlette.types import ASGIApp

from simulator.clock import parse_iso
from simulator.settings import Settings, SettingsError
from simulator.state import SimulatorState

if TYPE_CHECKING:  # httpx and yaml are loaded when a scenario is first applied or read
    import httpx
    import yaml
    from jsonschema import Draft202012Validator

__all__ = [
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "schema",
    "settings_with",
    "start_default",
]

TOKEN_HEADER = "X-Bulksim-Token"


class ScenarioError(SettingsError):
    """A scenario that does not hold: each line names where (file and line when known) and
    the field."""


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of a scenario."""
    from importlib import resources

    text = resources.files("simulator").joinpath("scenario.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # loaded with the first scenario, not to serve

    return Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: the document as the schema describes it."""

    data: Mapping[str, Any]

    @property
    def clock(self) -> str | None:
        clock: str | None = self.data.get("clock")
        return clock

    @property
    def start(self) -> datetime | None:
        start = self.data.get("start")
        return None if start is None else parse_iso(start)

    @property
    def seed(self) -> int | None:
        seed: int | None = self.data.get("seed")
        return seed

    @property
    def options(self) -> dict[str, dict[str, Any]]:
        options: dict[str, dict[str, Any]] = self.data.get("options", {})
        return options

    @property
    def faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = self.data.get("faults", [])
        return faults

    @property
    def objects(self) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = self.data.get("objects", [])
        return objects

    def option_pairs(self) -> tuple[tuple[str, str], ...]:
        """The options as ``--option`` gives them: ``("deepvue.max_rows", "10")``."""
        return tuple(
            (f"{provider}.{key}", _option_text(value))
            for provider, values in self.options.items()
            for key, value in values.items()
        )


@cache
def _loader() -> type[yaml.SafeLoader]:
    """YAML without implicit timestamps: ``start`` stays the text the schema checks. Built
    with the first scenario read: yaml is not loaded to serve."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def load_scenario(path: str) -> Scenario:
    """The scenario in the file at ``path``, or a :class:`ScenarioError` naming the line."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{name}: not UTF-8 text") from None
    return parse_scenario(text, name)


def parse_scenario(document: str | object, where: str = "scenario") -> Scenario:
    """A scenario from YAML/JSON text (errors name ``where`` and the line) or from an
    already parsed object (errors name ``where`` and the field path)."""
    node: yaml.Node | None = None
    if isinstance(document, str):
        import yaml

        loader = _loader()(document)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ScenarioError(f"{where}{line}: not YAML or JSON: {problem}") from None
        finally:
            loader.dispose()
    else:
        data = document
    errors = sorted(_validator().iter_errors(data), key=lambda e: _line(node, e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            field = _field(error.absolute_path)
            if node is None:
                place = f"{where}.{field}" if field else where
                lines.append(f"{place}: {error.message}")
            else:
                at = _line(node, error.absolute_path)
                lines.append(f"{where}:{at}: {field or '(top)'}: {error.message}")
        raise ScenarioError("\n".join(lines))
    assert isinstance(data, dict)
    scenario = Scenario(data)

    def named(path: Sequence[str | int]) -> str:
        if node is None:
            return f"{where}.{_field(path)}"
        return f"{where}:{_line(node, path)}: {_field(path)}"

    if scenario.objects and scenario.clock == "system":
        raise ScenarioError(f"{named(['clock'])}: objects need a manual clock (clock: manual)")
    for index, spec in enumerate(scenario.objects):
        # What the schema cannot say: one field bounded by another.
        if spec["kind"] == "passcreator.process" and spec.get("done", 0) > spec["total"]:
            raise ScenarioError(
                f"{named(['objects', index, 'done'])}: {spec['done']} is greater than "
                f"total ({spec['total']})"
            )
    return scenario


def _field(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _line(node: yaml.Node | None, path: Sequence[str | int]) -> int:
    """The 1-based line of the node at ``path`` (of its nearest ancestor found)."""
    if node is None:
        return 0
    import yaml

    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


def _option_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- making the objects --------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One object, made at ``at`` by ``make``'s request."""

    at: datetime
    index: int
    spec: Mapping[str, Any]


async def apply(
    scenario: Scenario, app: ASGIApp, state: SimulatorState, base_path: str, control: str
) -> None:
    """Make the scenario's objects in the sandbox served at ``base_path`` (its control plane
    at ``control``), set its clock to ``start``, schedule its faults, clear its journal."""
    headers = {}
    if state.settings.control_token:
        headers[TOKEN_HEADER] = state.settings.control_token
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://scenario", headers=headers
    ) as client:
        start = state.clock.now()
        steps = sorted(
            (
                _Step(start - _lead(spec, state), index, spec)
                for index, spec in enumerate(scenario.objects)
            ),
            key=lambda step: (step.at, step.index),
        )
        for step in steps:
            await _control(client, f"{control}/clock/set", {"now": step.at.isoformat()})
            await _make(client, base_path, step)
        await _control(client, f"{control}/clock/set", {"now": start.isoformat()})
        for index, fault in enumerate(scenario.faults):
            response = await client.post(f"{control}/faults", json=fault)
            if response.status_code != 201:
                raise ScenarioError(f"faults[{index}]: {_error_text(response)}")
        if scenario.objects:
            await client.delete(f"{control}/journal")


def _lead(spec: Mapping[str, Any], state: SimulatorState) -> timedelta:
    """How long before ``start`` the object is made."""
    # A provider's modules are imported with the first object of its kind (its runtime,
    # read first, has loaded its package): serving never pays for them.
    kind = spec["kind"]
    if kind == "deepvue.batch":
        runtime = _runtime(state, "deepvue")
        from simulator.providers.deepvue.batchfile import parse_batch_file
        from simulator.providers.deepvue.models import new_batch

        rows = parse_batch_file("rows.csv", _deepvue_csv(spec["rows"]), 10**9)
        # The batch's processing time as Deepvue's model gives it, for these rows and options.
        progress = new_batch(runtime.context, "", "", rows, None).progress
        duration = progress.finished_at - progress.started_at
        return duration * float(spec.get("progress", 0))
    if kind == "passcreator.process":
        # The instant its poll's current reaches ``done``, as Passcreator's model gives it.
        context = _runtime(state, "passcreator").context
        from simulator.providers.passcreator.models import Process, step_us

        start = state.clock.now()
        process = Process("", None, start, int(spec["total"]), step_us(context))
        return process.reached_at(int(spec.get("done", 0))) - start
    if kind == "helloatlas.batch":
        if spec.get("state", "processing") == "processing":
            return timedelta(0)
        # Every document finishes by the end of the processing window (none is slow).
        from simulator.providers.helloatlas.models import Timing

        return Timing.of(_runtime(state, "helloatlas").context).ready_after(1.0, slow=False)
    return timedelta(seconds=float(spec.get("age_seconds", 0)))


def _runtime(state: SimulatorState, provider: str) -> Any:
    runtime = state.runtimes.get(provider)
    if runtime is None:
        raise ScenarioError(f"objects: {provider} is not served here")
    return runtime


async def _make(client: httpx.AsyncClient, base: str, step: _Step) -> None:
    where = f"objects[{step.index}]"
    await _MAKERS[step.spec["kind"]](client, base, step.spec, where)


async def _make_deepvue_batch(
    client: httpx.AsyncClient, base: str, spec: Mapping[str, Any], where: str
) -> None:
    from simulator.providers.deepvue.models import TEST_CLIENTS

    client_id = TEST_CLIENTS[0].client_id
    secret = TEST_CLIENTS[0].client_secret
    auth = await client.post(
        f"{base}/deepvue/v1/authorize",
        data={"client_id": client_id, "client_secret": secret},
    )
    _expect(auth, 200, where)
    token = auth.json()["access_token"]
    response = await client.post(
        f"{base}/deepvue/v1/verification/upi-basic/batch",
        headers={"Authorization": f"Bearer {token}", "x-api-key": secret},
        files={"batch_file": ("rows.csv", _deepvue_csv(spec["rows"]), "text/csv")},
    )
    _expect(response, 201, where)


async def _make_passcreator_process(
    client: httpx.AsyncClient, base: str, spec: Mapping[str, Any], where: str
) -> None:
    from simulator.providers.passcreator.models import TEST_ACCOUNTS

    account = next(a for a in TEST_ACCOUNTS if a.id == spec.get("account", "test"))
    item = {"templateId": account.templates[0].identifier}
    response = await client.post(
        f"{base}/passcreator/api/v3/pass",
        headers={"Authorization": account.api_key},
        json={"data": [item] * int(spec["total"])},
    )
    _expect(response, 200, where)


# A file name per document type that HelloAtlas detects as that type (and no magic word).
_FILE_NAMES = {
    "AADHAAR": "aadhaar_front",
    "PAN": "pan_card",
    "DRIVING_LICENSE": "driving_licence",
    "VOTER_ID": "voter_id",
    "PASSPORT": "passport",
    "GST_CERT": "gst_certificate",
}


async def _make_helloatlas_batch(
    client: httpx.AsyncClient, base: str, spec: Mapping[str, Any], where: str
) -> None:
    from simulator.providers.helloatlas.models import TEST_CLIENTS

    account = TEST_CLIENTS[0]
    auth = await client.post(
        f"{base}/helloatlas/v1/bulk/authtoken",
        headers={"Client-Id": account.client_id, "Client-Secret": account.client_secret},
    )
    _expect(auth, 201, where)
    types: list[str] = spec["types"]
    count = int(spec.get("count", len(types)))
    names = [_FILE_NAMES[types[i % len(types)]] for i in range(count)]
    files = [
        {"file_url": f"https://docs.example.com/kyc/{name}_{i + 1}.jpg", "document_id": str(i + 1)}
        for i, name in enumerate(names)
    ]
    response = await client.post(
        f"{base}/helloatlas/v1/bulk/multiupload",
        headers={"Token": auth.json()["access_token"]},
        json={"product_type": spec.get("product_type", "POC_CDL"), "file_urls": files},
    )
    _expect(response, 201, where)


async def _make_check_file(
    client: httpx.AsyncClient, base: str, spec: Mapping[str, Any], where: str
) -> None:
    from simulator.providers.check.models import KEYS_BY_PLAN

    plan = spec.get("plan", "pro")
    body = json.dumps({"items": spec["items"]}).encode()
    response = await client.post(
        f"{base}/check/v1/batch/upload",
        headers={"Authorization": f"Bearer {KEYS_BY_PLAN[plan]}"},
        files={"file": ("items.json", body, "application/json")},
    )
    _expect(response, 200, where)


_Maker = Callable[["httpx.AsyncClient", str, Mapping[str, Any], str], Awaitable[None]]
# Each kind of the schema's objects, made through its provider's API.
_MAKERS: dict[str, _Maker] = {
    "deepvue.batch": _make_deepvue_batch,
    "passcreator.process": _make_passcreator_process,
    "helloatlas.batch": _make_helloatlas_batch,
    "check.file": _make_check_file,
}


def _deepvue_csv(rows: Sequence[Mapping[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["vpa", "name"])
    for row in rows:
        writer.writerow([row["vpa"], row.get("name", "")])
    return out.getvalue().encode()


async def _control(client: httpx.AsyncClient, path: str, body: Mapping[str, Any]) -> None:
    response = await client.post(path, json=body)
    if response.status_code != 200:
        raise ScenarioError(f"{path}: {_error_text(response)}")


def _expect(response: httpx.Response, status: int, where: str) -> None:
    if response.status_code != status:
        raise ScenarioError(
            f"{where}: the provider refused it ({response.status_code}): {_error_text(response)}"
        )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return json.dumps(body)[:200]


def settings_with(settings: Settings, scenario: Scenario) -> Settings:
    """``settings`` with the scenario's clock, start, seed and options in place of its own
    (a scenario with objects runs on a manual clock)."""
    clock: Literal["system", "manual"] = settings.clock
    if scenario.clock == "system":
        clock = "system"
    elif scenario.clock == "manual" or scenario.objects:
        clock = "manual"
    start = scenario.start or settings.start
    return dataclasses.replace(
        settings,
        clock=clock,
        start=start if clock == "manual" else None,
        seed=settings.seed if scenario.seed is None else scenario.seed,
        options=settings.options + scenario.option_pairs(),
    )


async def start_default(app: Any, scenario: Scenario) -> None:
    """Make the scenario's objects and faults in the app's default sandbox."""
    sandboxes = app.state.sandboxes
    await sandboxes.start_from(sandboxes.default, scenario)
