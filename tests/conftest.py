"""Shared fixtures: a manual clock at a fixed instant, a seeded app, a test client per app."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, settings
from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from tests.redis_server import redis_server, redis_url  # noqa: F401 (fixtures)

START = datetime(2026, 3, 9, 8, 14, 8, tzinfo=UTC)

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("default")


class Sleeps(list[float]):
    """Records the latency the simulator asked for instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``bulksim serve`` run in process configures logging; later tests get it back as it was."""
    loggers = [logging.getLogger(name) for name in ("bulksim", "bulksim.access", "uvicorn")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers, logger.level, logger.propagate = handlers, level, propagate


# The store backends a test that asks for ``store_url`` runs on, by the URL that opens each;
# ``{tmp}`` becomes a fresh directory's absolute path. Another backend joins by adding its URL.
STORE_URLS = ["memory", "sqlite:///{tmp}/state.db", "redis"]


def store_url_maker(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """Each call, a URL naming a fresh, empty store of the backend ``kind`` (a STORE_URLS
    entry)."""
    if kind == "redis":
        # The session's redis-server, emptied; each fresh store a database of its own.
        server = request.getfixturevalue("redis_server")
        server.flush()
        databases = iter(range(1, 16))
        return lambda: f"{server.url.rpartition('/')[0]}/{next(databases)}"
    return lambda: kind.replace("{tmp}", str(tmp_path_factory.mktemp("store")))


@pytest.fixture(params=STORE_URLS, ids=lambda url: url.partition(":")[0])
def new_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """Each call, a URL naming a fresh, empty store of one backend (the test runs once per
    backend)."""
    return store_url_maker(request.param, request, tmp_path_factory)


@pytest.fixture
def store_url(new_store_url: Callable[[], str]) -> str:
    """A URL naming a fresh, empty store of one backend (the test runs once per backend)."""
    return new_store_url()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


AppFactory = Callable[..., Starlette]


@pytest.fixture
def app_factory(clock: ManualClock, sleeps: Sleeps) -> AppFactory:
    """Build an app on the test clock; keyword arguments become Settings fields."""

    def build(**fields: object) -> Starlette:
        fields.setdefault("seed", 7)
        return create_app(Settings(**fields), clock=clock, sleep=sleeps)  # type: ignore[arg-type]

    return build


@pytest.fixture
def app(app_factory: AppFactory) -> Starlette:
    return app_factory()


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def advance(client: TestClient, seconds: float) -> None:
    """Move the simulator's clock through the control plane, as a served user would."""
    response = client.post("/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
