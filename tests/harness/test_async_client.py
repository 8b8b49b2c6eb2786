"""An asyncio client drives the in-process simulator: async_client() and clock.async_sleep."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from contracts.harness import Simulator

CSV = b"vpa,name\nrahul.sharma@okaxis,\n9876543210@paytm,\n"


class AsyncDeepvue:
    """A small asyncio Deepvue client: authorize, submit, poll until done, download."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: dict[str, Any],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.http = http
        self.credentials = credentials
        self.sleep = sleep

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call, retried after a dropped connection."""
        for attempt in range(4):
            try:
                response = await self.http.request(method, url, **kwargs)
            except httpx.RemoteProtocolError:
                await self.sleep(2**attempt)
                continue
            response.raise_for_status()
            return response
        raise ConnectionError(f"{method} {url}: the connection dropped four times")

    async def verify(self, content: bytes) -> list[dict[str, str]]:
        secret = self.credentials["client_secret"]
        auth = await self.call(
            "POST",
            "/v1/authorize",
            data={"client_id": self.credentials["client_id"], "client_secret": secret},
        )
        headers = {"Authorization": f"Bearer {auth.json()['access_token']}", "x-api-key": secret}
        submit = await self.call(
            "POST",
            "/v1/verification/upi-basic/batch",
            headers=headers,
            files={"batch_file": ("vpas.csv", content, "text/csv")},
        )
        request_id = submit.json()["request_id"]
        while True:
            poll = await self.call(
                "GET",
                "/v1/verification/batch-processing-status",
                params={"request_id": request_id},
                headers=headers,
            )
            data = poll.json()["data"]
            if data["status"] == 200:
                break
            await self.sleep(10)
        output = await self.call("GET", data["batch_output_file_url"])
        return list(csv.DictReader(io.StringIO(output.text)))


async def verify(sim: Simulator) -> list[dict[str, str]]:
    async with sim.async_client("deepvue") as http:
        client = AsyncDeepvue(http, sim.credentials("deepvue"), sim.clock.async_sleep)
        return await client.verify(CSV)


def test_an_asyncio_client_verifies_a_batch_on_the_manual_clock(bulksim_app: Simulator) -> None:
    rows = asyncio.run(verify(bulksim_app))
    assert [row["vpa"] for row in rows] == ["rahul.sharma@okaxis", "9876543210@paytm"]
    polls = bulksim_app.journal.entries(operation="get_batch_processing_status")
    assert len(polls) > 1  # it waited on the simulator's clock between polls
    assert bulksim_app.clock.now().isoformat() > "2026-03-09T08:14:30"
    bulksim_app.assert_client_conformant()


def test_a_drop_reaches_an_asyncio_client_as_a_cut_connection(bulksim_app: Simulator) -> None:
    bulksim_app.faults.schedule("deepvue", "drop", operation="authorize")

    async def authorize() -> None:
        async with bulksim_app.async_client("deepvue") as http:
            await http.post("/v1/authorize", data={"client_id": "a", "client_secret": "b"})

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(authorize())


def test_an_asyncio_client_survives_dropped_connections(bulksim_app: Simulator) -> None:
    bulksim_app.faults.schedule("deepvue", "drop", operation="authorize")
    bulksim_app.faults.schedule("deepvue", "drop", operation="get_batch_processing_status")
    rows = asyncio.run(verify(bulksim_app))
    assert len(rows) == 2
    faults = [e["fault"] for e in bulksim_app.journal.entries() if e["fault"]]
    assert faults == ["drop", "drop"]
    bulksim_app.assert_client_conformant()
