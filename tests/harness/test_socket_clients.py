"""A client that opens its own sockets, given the in-process simulator's URL, is told why."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

import httpx
import pytest

from contracts.harness import ClientCrashed, Simulator


def with_urllib(url: str) -> int:
    try:
        urllib.request.urlopen(f"{url}/v1/authorize", data=b"client_id=a").close()
    except urllib.error.HTTPError as answer:
        answer.close()
        return answer.code
    raise AssertionError("an authorize without a secret was accepted")


def with_httpx(url: str) -> int:
    with httpx.Client() as client:  # its own connection pool, not bulksim_app.client()
        return client.post(f"{url}/v1/authorize", data={"client_id": "a"}).status_code


SOCKET_CLIENTS = pytest.mark.parametrize("call", [with_urllib, with_httpx])


@SOCKET_CLIENTS
def test_in_process_url_in_a_socket_client_says_use_bulksim_server(
    bulksim_app: Simulator, call: Callable[[str], int]
) -> None:
    with pytest.raises(ClientCrashed, match=r"For clients that open sockets .* use bulksim_server"):
        bulksim_app.run_client(call, bulksim_app.url("deepvue"))


@SOCKET_CLIENTS
def test_the_served_url_works_in_a_socket_client(
    bulksim_server: Simulator, call: Callable[[str], int]
) -> None:
    assert bulksim_server.run_client(call, bulksim_server.url("deepvue")) == 422
    assert [e["operation"] for e in bulksim_server.journal.entries()] == ["authorize"]
