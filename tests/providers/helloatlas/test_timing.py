"""Each batch keeps the timing it was uploaded with; /_sim/options changes reach new batches."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from tests.conftest import START
from tests.providers.helloatlas.conftest import (
    BASE,
    advance,
    auth,
    documents,
    extracts,
    files,
    upload,
)

ALL_DONE = 30  # max_processing_seconds by default
SLOWER = {"min_processing_seconds": 1000, "max_processing_seconds": 2000}


def set_options(client: TestClient, **options: object) -> None:
    response = client.post(
        "http://testserver/_sim/options", json={"provider": "helloatlas", "options": options}
    )
    assert response.status_code == 200, response.text


def numbered(count: int) -> list[dict[str, str]]:
    return files(*(f"scan_{n}.jpg" for n in range(1, count + 1)))


def test_extracts_finished_documents_stay_finished_after_a_timing_option_change(
    helloatlas: TestClient,
) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(5))
    advance(helloatlas, ALL_DONE)
    done = extracts(helloatlas, headers, batch_id)
    assert all(isinstance(d["file_data"], dict) for d in documents(done))

    set_options(helloatlas, **SLOWER)

    assert extracts(helloatlas, headers, batch_id) == done


def test_extracts_a_timing_option_change_reaches_batches_uploaded_after_it(
    helloatlas: TestClient,
) -> None:
    headers = auth(helloatlas)
    before = upload(helloatlas, headers, numbered(5))
    set_options(helloatlas, **SLOWER)
    after = upload(helloatlas, headers, numbered(5))

    advance(helloatlas, ALL_DONE)
    assert all(
        isinstance(d["file_data"], dict) for d in documents(extracts(helloatlas, headers, before))
    )
    assert all(d["file_data"] is None for d in documents(extracts(helloatlas, headers, after)))

    advance(helloatlas, SLOWER["max_processing_seconds"])
    assert all(
        isinstance(d["file_data"], dict) for d in documents(extracts(helloatlas, headers, after))
    )


def test_extracts_a_page_read_from_the_cache_equals_a_fresh_render_after_option_changes() -> None:
    """Pages served with the page cache on and off agree, whatever the options did meanwhile."""

    def run(page_cache_bytes: int) -> list[bytes]:
        options = (("helloatlas.page_cache_bytes", str(page_cache_bytes)),)
        app = create_app(Settings(seed=3, options=options), clock=ManualClock(START))
        bodies = []
        with TestClient(app, base_url=BASE) as client:
            headers = auth(client)
            batch_id = upload(client, headers, numbered(12))
            params: dict[str, Any] = {"batch_id": batch_id, "per_page": 5}

            def read() -> None:
                for page in (1, 2, 3):
                    response = client.get(
                        "/v1/bulk/extracts", params={**params, "page": page}, headers=headers
                    )
                    assert response.status_code == 200, response.text
                    bodies.append(response.content)

            advance(client, 17)  # some documents done, some not
            read()
            set_options(client, pending_documents="omit", **SLOWER)
            read()
            advance(client, ALL_DONE)
            read()
            set_options(client, pending_documents="null", min_processing_seconds=0)
            read()
        return bodies

    cached, uncached = run(8 * 1024 * 1024), run(0)
    assert cached == uncached
    assert any(b'"file_data":null' in body for body in cached[:3])
