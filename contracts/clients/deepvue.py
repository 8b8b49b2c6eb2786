"""A reference Deepvue client: authorize, submit a UPI batch, poll until done, download."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import httpx
import jwt

from contracts.clients.base import (
    Now,
    RetryPolicy,
    Sleep,
    call_with_retries,
    system_now,
    system_sleep,
)

__all__ = ["DeepvueClient", "DeepvueError"]


class DeepvueError(RuntimeError):
    """Deepvue answered with an error a retry will not fix."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"Deepvue answered {response.status_code}: {response.text[:300]}")
        self.response = response


@dataclass
class DeepvueClient:
    """Verifies a batch of UPI VPAs the way Deepvue's documentation describes.

    The token is refreshed before it expires (its lifetime is read from the JWT) and once
    more if Deepvue still answers 401; status is polled with exponential backoff.
    """

    http: httpx.Client
    client_id: str
    client_secret: str
    sleep: Sleep = system_sleep
    now: Now = system_now
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval: float = 2.0
    max_poll_interval: float = 60.0
    max_polls: int = 200
    refresh_margin: float = 300.0
    _token: str | None = None
    _token_deadline: float = 0.0

    def verify(self, csv_content: bytes, webhook_url: str | None = None) -> list[dict[str, str]]:
        """Submit a CSV (``vpa``, optional ``name``) and return the output file's rows."""
        request_id = self.submit(csv_content, webhook_url)
        url = self.wait(request_id)
        return self.download(url)

    def submit(self, csv_content: bytes, webhook_url: str | None = None) -> str:
        params = {"webhook_url": webhook_url} if webhook_url else {}
        response = self._authorized(
            "POST",
            "/v1/verification/upi-basic/batch",
            params=params,
            files={"batch_file": ("batch.csv", csv_content, "text/csv")},
        )
        request_id: str = response.json()["request_id"]
        return request_id

    def status(self, request_id: str) -> dict[str, object]:
        response = self._authorized(
            "GET", "/v1/verification/batch-processing-status", params={"request_id": request_id}
        )
        data: dict[str, object] = response.json()["data"]
        return data

    def wait(self, request_id: str) -> str:
        """Poll until the batch completes; returns the output file's URL."""
        interval = self.poll_interval
        for _ in range(self.max_polls):
            data = self.status(request_id)
            if data["status"] == 200:
                return str(data["batch_output_file_url"])
            self.sleep(interval)
            interval = min(self.max_poll_interval, interval * 1.5)
        raise TimeoutError(f"batch {request_id} did not complete after {self.max_polls} polls")

    def download(self, url: str) -> list[dict[str, str]]:
        response = call_with_retries(
            lambda: self.http.get(url), self.sleep, self.retry, intact=_is_output_csv
        )
        if response.status_code != 200:
            raise DeepvueError(response)
        return list(csv.DictReader(io.StringIO(response.text)))

    def authorize(self) -> str:
        response = call_with_retries(
            lambda: self.http.post(
                "/v1/authorize",
                data={"client_id": self.client_id, "client_secret": self.client_secret},
            ),
            self.sleep,
            self.retry,
        )
        if response.status_code != 200:
            raise DeepvueError(response)
        token: str = response.json()["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        lifetime = float(claims["exp"]) - float(claims.get("iat", claims["exp"]))
        self._token = token
        self._token_deadline = self.now() + max(0.0, lifetime - self.refresh_margin)
        return token

    def _headers(self) -> dict[str, str]:
        if self._token is None or self.now() >= self._token_deadline:
            self.authorize()
        return {"Authorization": f"Bearer {self._token}", "x-api-key": self.client_secret}

    def _authorized(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        for refreshed in (False, True):
            response = call_with_retries(
                lambda: self.http.request(method, path, headers=self._headers(), **kwargs),  # type: ignore[arg-type]
                self.sleep,
                self.retry,
            )
            if response.status_code == 401 and not refreshed:
                self._token = None  # the provider no longer takes it: authorize again, once
                continue
            if response.status_code >= 300:
                raise DeepvueError(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover


def _is_output_csv(response: httpx.Response) -> bool:
    """The output file starts with its header row; anything else was cut or mangled."""
    header = response.text.split("\n", 1)[0].split(",")
    return {"vpa", "status"} <= set(header)
