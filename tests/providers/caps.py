"""What a provider's store holds, for the caps tests: records and their bytes in one table."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from simulator.kit.budget import sizes_of
from simulator.store import Store, Table


def held(
    client: TestClient, provider: str, table: Table[Any], *, sized: bool = True
) -> tuple[int, int]:
    """(records, bytes) ``provider``'s store holds in ``table`` (bytes 0 when not ``sized``)."""
    store: Store = client.app.state.sim.runtimes[provider].context.store  # type: ignore[attr-defined]

    async def read() -> tuple[int, int]:
        total = await store.total(sizes_of(table)) if sized else 0
        return await store.count(table), total

    assert client.portal is not None
    return client.portal.call(read)
