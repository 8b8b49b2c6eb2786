"""Each provider's bulk flow, as a client drives it: what the dashboard should show."""

from __future__ import annotations

from typing import Any

CHECK_KEY = "vfy_test_pro_8c2e6a4f1b9d7e35"
DEEPVUE_ID = "deepvue_test_client"
DEEPVUE_SECRET = "free_tier_sim_5f3c8a2e9b7d4c1a"
PASSCREATOR_KEY = "pcsim-test-key-5b0e8c7a41d94e2f"
PASSCREATOR_TEMPLATE = "2d1b5f7f-26df-41c6-980f-ed0709f1170d"
HELLOATLAS_ID = "helloatlas_test_client"
HELLOATLAS_SECRET = "ha_sim_secret_4b1d9e7c2a6f3058"
CSV = b"content\nThe sky is blue.\nWater boils at 100 C at sea level.\nThe moon is cheese.\n"
SECRETS = (CHECK_KEY, DEEPVUE_SECRET, PASSCREATOR_KEY, HELLOATLAS_SECRET)

# Both Starlette's TestClient and httpx.Client: the same calls, different response classes.
Client = Any


def check_batch(client: Client) -> str:
    """Upload a file of three claims and create a batch from it; the batch's id."""
    auth = {"Authorization": f"Bearer {CHECK_KEY}"}
    upload = client.post(
        "/check/v1/batch/upload", headers=auth, files={"file": ("c.csv", CSV, "text/csv")}
    )
    assert upload.status_code == 200, upload.text
    created = client.post("/check/v1/batch", headers=auth, json={"fileId": upload.json()["fileId"]})
    assert created.status_code == 202, created.text
    batch_id: str = created.json()["id"]
    return batch_id


def check_poll(client: Client, batch_id: str) -> Any:
    response = client.get(
        f"/check/v1/batch/{batch_id}", headers={"Authorization": f"Bearer {CHECK_KEY}"}
    )
    return response


def deepvue_headers(client: Client) -> dict[str, str]:
    response = client.post(
        "/deepvue/v1/authorize", data={"client_id": DEEPVUE_ID, "client_secret": DEEPVUE_SECRET}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return {"Authorization": f"Bearer {token}", "x-api-key": DEEPVUE_SECRET}


def deepvue_batch(client: Client, headers: dict[str, str]) -> str:
    response = client.post(
        "/deepvue/v1/verification/upi-basic/batch",
        headers=headers,
        files={"batch_file": ("vpas.csv", b"vpa\nalice@upi\nbob@upi\n", "text/csv")},
    )
    assert response.status_code == 201, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def deepvue_poll(client: Client, headers: dict[str, str], request_id: str) -> Any:
    return client.get(
        "/deepvue/v1/verification/batch-processing-status",
        params={"request_id": request_id},
        headers=headers,
    )


def passcreator_process(client: Client, passes: int = 2) -> str:
    items = [{"templateId": PASSCREATOR_TEMPLATE} for _ in range(passes)]
    response = client.post(
        "/passcreator/api/v3/pass", json={"data": items}, headers={"Authorization": PASSCREATOR_KEY}
    )
    assert response.status_code == 200, response.text
    identifier: str = response.json()["data"]["identifier"]
    return identifier


def passcreator_poll(client: Client, identifier: str) -> Any:
    return client.get(
        f"/passcreator/api/v3/process/{identifier}", headers={"Authorization": PASSCREATOR_KEY}
    )


def helloatlas_headers(client: Client) -> dict[str, str]:
    response = client.post(
        "/helloatlas/v1/bulk/authtoken",
        headers={"Client-Id": HELLOATLAS_ID, "Client-Secret": HELLOATLAS_SECRET},
    )
    assert response.status_code == 201, response.text
    return {"Token": response.json()["access_token"]}


def helloatlas_batch(client: Client, headers: dict[str, str]) -> str:
    files = [
        {"file_url": f"https://docs.example.com/{n}.jpg", "document_id": str(n)} for n in (1, 2)
    ]
    response = client.post(
        "/helloatlas/v1/bulk/multiupload",
        json={"product_type": "POC_CDL", "file_urls": files},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    batch_id: str = response.json()[0]["batch_id"]
    return batch_id


def helloatlas_poll(client: Client, headers: dict[str, str], batch_id: str) -> Any:
    return client.get(
        "/helloatlas/v1/bulk/extracts", params={"batch_id": batch_id}, headers=headers
    )
