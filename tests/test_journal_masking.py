"""A secret a client sends, however it sends it, is nowhere in the journal or the logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from contracts.harness import default_settings, serve_in_thread
from simulator.server import JsonFormatter, TextFormatter

CAP = 256


def secrets_of(credentials: Mapping[str, object]) -> Iterator[str]:
    """Every secret among a provider's credentials (keys and secrets; not ids or names)."""
    for key, value in credentials.items():
        if isinstance(value, Mapping):
            yield from secrets_of(value)
        elif isinstance(value, str) and not key.endswith("id") and key != "name":
            yield value


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("provider", ["check", "deepvue", "helloatlas", "passcreator"])
def test_a_secret_sent_every_way_is_masked_in_the_journal_and_the_logs(
    provider: str, store: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # On a shared store the journal is read back from the store: masked all the same.
    url = f"sqlite:///{tmp_path / 'state.db'}" if store == "sqlite" else store
    with (
        caplog.at_level(logging.INFO),
        serve_in_thread(default_settings(journal_body_bytes=CAP, store=url)) as simulator,
    ):
        secrets = sorted(set(secrets_of(simulator.credentials(provider))))
        assert secrets
        with simulator.client(provider) as client:
            for secret in secrets:
                padding = "x" * CAP  # past the journal's cap: the body is cut short
                for name in ("X-Provider-Key", "Api-Key", "X-Custom"):
                    client.get("/v1/anything", headers={name: secret})
                for name in ("api_key", "key", "token", "anything"):
                    client.get("/v1/anything", params={name: secret})
                for field in ("api_key", "client_secret", "password", "note"):
                    client.post("/v1/anything", json={field: secret})
                    client.post("/v1/anything", json={"padding": padding, field: secret})
                    client.post("/v1/anything", json={field: secret, "padding": padding})
                    client.post("/v1/anything", data={field: secret})
                    client.post("/v1/anything", data={field: secret, "padding": padding})
                client.post("/v1/anything", content=f"{padding} {secret}".encode())
        journal = simulator.http.get("/_sim/journal").text
        assert json.loads(journal)["entries"]
    assert any(r.name == "bulksim.access" for r in caplog.records)
    logged = "\n".join(
        formatter.format(record)
        for record in caplog.records
        if record.name.startswith(("bulksim", "uvicorn"))  # the server's, not the client's
        for formatter in (TextFormatter(), JsonFormatter())
    )
    for secret in secrets:
        assert secret not in journal
        assert secret not in logged
