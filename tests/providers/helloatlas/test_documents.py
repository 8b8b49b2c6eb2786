"""Extracted documents: type detection, field formats, magic file names, determinism."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock
from simulator.providers.helloatlas.fakes import (
    DOCUMENT_TYPES,
    gstin_check_char,
    verhoeff_check_digit,
    verhoeff_valid,
)
from tests.conftest import START, AppFactory
from tests.providers.helloatlas.conftest import (
    BASE,
    advance,
    auth,
    documents,
    extracts,
    files,
    upload,
)

FIELDS = {
    "AADHAAR": {"name", "date_of_birth", "address", "formatted_address", "aadhaar_number"},
    "PAN": {"name_as_per_pan", "father_name", "dob", "pan_number", "document_quality_flag"},
    "DRIVING_LICENSE": {"dl_number", "name", "date_of_birth", "issue_date", "valid_till", "state"},
    "VOTER_ID": {"voter_id", "name", "date_of_birth", "gender"},
    "PASSPORT": {
        "passport_number",
        "name",
        "date_of_birth",
        "place_of_birth",
        "gender",
        "date_of_issue",
        "date_of_expiry",
        "place_of_issue",
    },
    "GST_CERT": {
        "gst_number",
        "legal_name",
        "trade_name",
        "address",
        "formatted_address",
        "date_of_issue",
        "constitution_of_business",
    },
}
DATE_FIELDS = {
    "date_of_birth",
    "dob",
    "issue_date",
    "valid_till",
    "date_of_issue",
    "date_of_expiry",
}
NAMES = {
    "AADHAAR": ["aadhaar_front.jpg", "E-Aadhar.pdf", "my-adhaar.png", "uidai_letter.jpg"],
    "PAN": ["pan.jpg", "PANCARD.png", "customer_pan_7.jpeg"],
    "DRIVING_LICENSE": ["dl_front.jpg", "driving-licence.png", "License.pdf"],
    "VOTER_ID": ["voter_id.jpg", "epic_card.png", "VoterCard.jpg"],
    "PASSPORT": ["passport.jpg", "Passport_back.PNG"],
    "GST_CERT": ["gst_certificate.pdf", "GSTIN.jpg"],
}


def extracted(
    client: TestClient, names: list[str], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Upload files with these names, let them finish, and return their page entries."""
    headers = headers or auth(client)
    batch_id = upload(client, headers, files(*names))
    advance(client, 30)
    return documents(extracts(client, headers, batch_id))


def file_data(entry: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = entry["file_data"]
    assert isinstance(data, dict), entry
    return data


def value(data: dict[str, Any], name: str) -> str:
    field = data[name]
    assert isinstance(field, dict)
    text = field["value"]
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize("kind", list(NAMES))
def test_extracts_type_is_detected_from_the_file_name(helloatlas: TestClient, kind: str) -> None:
    entries = extracted(helloatlas, NAMES[kind])
    assert [file_data(e)["document_type"] for e in entries] == [kind] * len(NAMES[kind])


def test_extracts_type_ignores_folders_queries_and_mid_word_keywords(
    helloatlas: TestClient,
) -> None:
    headers = auth(helloatlas)
    urls = [f"https://x.in/passport/IMG_{n}.jpg?type=passport" for n in range(12)]
    urls += [f"https://x.in/uploads/company_{n}.jpg" for n in range(12)]
    batch_id = upload(
        helloatlas, headers, [{"file_url": u, "document_id": str(n)} for n, u in enumerate(urls)]
    )
    advance(helloatlas, 30)
    kinds = [
        file_data(e)["document_type"] for e in documents(extracts(helloatlas, headers, batch_id))
    ]
    # Each falls back to a hash of its URL, so the types vary.
    assert set(kinds[:12]) != {"PASSPORT"}
    assert set(kinds[12:]) != {"PAN"}


def test_extracts_undetectable_type_comes_from_a_hash_of_the_url(
    app_factory: AppFactory,
) -> None:
    names = [f"IMG_{n:04d}.jpg" for n in range(40)]
    kinds = []
    for seed in (7, 8):
        with TestClient(app_factory(seed=seed), base_url=BASE) as client:
            kinds.append([file_data(e)["document_type"] for e in extracted(client, names)])
    assert kinds[0] == kinds[1]
    assert set(kinds[0]) == set(DOCUMENT_TYPES)


def test_extracts_every_field_is_value_and_confidence(helloatlas: TestClient) -> None:
    names = [names[0] for names in NAMES.values()] * 3
    for entry in extracted(helloatlas, names):
        data = file_data(entry)
        kind = data.pop("document_type")
        assert isinstance(kind, str)
        assert set(data) == FIELDS[kind]
        for name, field in data.items():
            parts = field.values() if name == "formatted_address" else [field]
            for part in parts:
                assert set(part) - {"redact_url"} == {"value", "confidence_score"}
                assert isinstance(part["value"], str)
                assert part["value"]
                assert 0.85 <= part["confidence_score"] <= 0.99
                if name in DATE_FIELDS:
                    datetime.strptime(part["value"], "%d/%m/%Y")  # noqa: DTZ007


def test_extracts_numbers_are_valid_looking(helloatlas: TestClient) -> None:
    names = [names[0] for names in NAMES.values()] * 8
    for entry in extracted(helloatlas, names):
        data = file_data(entry)
        kind = data["document_type"]
        if kind == "AADHAAR":
            number = value(data, "aadhaar_number")
            assert re.fullmatch(r"[2-9][0-9]{3} [0-9]{4} [0-9]{4}", number)
            assert verhoeff_valid(number.replace(" ", ""))
            address = value(data, "address")
            formatted = data["formatted_address"]
            assert isinstance(formatted, dict)
            assert address.endswith(
                f"{formatted['state']['value']}, {formatted['postcode']['value']}"
            )
        elif kind == "PAN":
            pan = value(data, "pan_number")
            assert re.fullmatch(r"[A-Z]{3}P[A-Z][0-9]{4}[A-Z]", pan)
            assert pan[4] == value(data, "name_as_per_pan").split()[-1][0]
            assert value(data, "document_quality_flag") in (
                "original",
                "xerox_copy",
                "photo_of_photo",
            )
        elif kind == "DRIVING_LICENSE":
            number = value(data, "dl_number")
            assert re.fullmatch(r"[A-Z]{2}[0-9]{2} [0-9]{11}", number)
            assert number[5:9] == value(data, "issue_date")[-4:]
        elif kind == "VOTER_ID":
            assert re.fullmatch(r"[A-Z]{3}[0-9]{7}", value(data, "voter_id"))
            assert value(data, "gender") in ("Male", "Female")
        elif kind == "PASSPORT":
            assert re.fullmatch(r"[A-PR-WY][1-9][0-9]{6}", value(data, "passport_number"))
            issued = datetime.strptime(value(data, "date_of_issue"), "%d/%m/%Y")  # noqa: DTZ007
            expiry = datetime.strptime(value(data, "date_of_expiry"), "%d/%m/%Y")  # noqa: DTZ007
            assert 3650 <= (expiry - issued).days <= 3653
        elif kind == "GST_CERT":
            gstin = value(data, "gst_number")
            assert re.fullmatch(r"[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]", gstin)
            assert gstin[-1] == gstin_check_char(gstin[:14])


def test_extracts_people_are_adults_born_before_the_upload(helloatlas: TestClient) -> None:
    for entry in extracted(helloatlas, ["aadhaar.jpg", "voter.jpg", "passport.jpg"] * 5):
        data = file_data(entry)
        born = datetime.strptime(value(data, "date_of_birth"), "%d/%m/%Y").date()  # noqa: DTZ007
        assert date(1950, 1, 1) < born < date(2008, 3, 10)


def test_verhoeff_helpers_match_the_published_example() -> None:
    assert verhoeff_check_digit("236") == "3"
    assert verhoeff_valid("2363")
    assert not verhoeff_valid("2364")
    assert gstin_check_char("27AAPFU0939F1Z") == "V"


@pytest.mark.parametrize("name", ["fail_scan.jpg", "pan_corrupt.png", "Failed-Aadhaar.pdf"])
def test_extracts_magic_fail_file_name_fails_extraction(helloatlas: TestClient, name: str) -> None:
    [entry] = extracted(helloatlas, [name])
    assert entry == {
        "document_id": "1",
        "file_data": None,
        "error_code": "422",
        "error_message": "Unprocessable: Unable to extract data from the document",
    }


def test_extracts_magic_unknown_file_name_is_unidentified(helloatlas: TestClient) -> None:
    [entry] = extracted(helloatlas, ["unknown_document.jpg"])
    assert entry["error_message"] == "Unprocessable: Document type could not be identified"
    assert entry["file_data"] is None


def test_extracts_magic_blurry_file_name_gives_low_confidence(helloatlas: TestClient) -> None:
    entries = extracted(helloatlas, ["blurry_pan.jpg", "aadhaar_blurry.jpg", "passport-blurry.png"])
    for entry in entries:
        data = file_data(entry)
        scores = [
            part["confidence_score"]
            for name, field in data.items()
            if name != "document_type"
            for part in (field.values() if name == "formatted_address" else [field])
        ]
        assert all(0.30 <= score <= 0.59 for score in scores), scores
    assert value(file_data(entries[0]), "document_quality_flag") == "photo_of_photo"


def test_extracts_magic_slow_file_name_takes_ten_minutes_more(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, files("slow_pan.jpg", "pan.jpg"))
    advance(helloatlas, 30)
    slow, quick = documents(extracts(helloatlas, headers, batch_id))
    assert slow["file_data"] is None
    assert isinstance(quick["file_data"], dict)
    advance(helloatlas, 600)
    slow, _ = documents(extracts(helloatlas, headers, batch_id))
    assert file_data(slow)["document_type"] == "PAN"


def test_extracts_same_seed_same_data_other_seed_other_data(
    app_factory: AppFactory, clock: ManualClock
) -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        clock.set(START)  # the apps share the clock, and the upload time is in the batch id
        with TestClient(app_factory(seed=seed), base_url=BASE) as client:
            return extracted(client, ["aadhaar.jpg", "pan.jpg", "passport.jpg"])

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_extracts_redact_url_names_the_file_uuid(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    response = helloatlas.post(
        "/v1/bulk/multiupload",
        json={"product_type": "P", "file_urls": files("aadhaar.jpg")},
        headers=headers,
    )
    [entry] = response.json()
    advance(helloatlas, 30)
    [document] = documents(extracts(helloatlas, headers, entry["batch_id"]))
    number = file_data(document)["aadhaar_number"]
    assert isinstance(number, dict)
    assert f"/{entry['batch_id']}/{entry['file_uuid']}.jpg?" in number["redact_url"]
