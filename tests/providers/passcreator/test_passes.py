"""GET /api/v3/pass/{identifier} and GET /api/v3/pass?query= (the Query Language, pages)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from tests.conftest import AppFactory
from tests.providers.passcreator.conftest import (
    BASE,
    DAVID,
    KEY,
    OTHER_KEY,
    PASSES,
    RAY,
    TEMPLATE,
    advance,
    bulk_create,
    encoded,
    listed,
    where,
)


def test_get_pass_seeded_returns_the_documented_example(passcreator: TestClient) -> None:
    response = passcreator.get(f"{PASSES}/{DAVID}", headers=KEY)
    assert response.status_code == 200
    page = f"https://app.passcreator.com/passinstance/{DAVID}"
    assert response.json() == {
        "statusCode": 200,
        "success": True,
        "description": "Success",
        "errors": [],
        "count": 1,
        "responseMetaData": None,
        "data": {
            "identifier": DAVID,
            "templateId": TEMPLATE,
            "userProvidedId": "member-0001",
            "barcodeValue": "5b55c8058e3c77.10425272",
            "groupingIdentifier": None,
            "voided": False,
            "createdOn": "2026-03-08 08:14:08",
            "modifiedOn": "2026-03-08 08:14:08",
            "downloadPage": page,
            "iPhoneUri": f"{page}/apple",
            "androidUri": f"{page}/google",
            "firstname": "David",
            "age": 30,
            "country": "Germany",
        },
    }


@pytest.mark.parametrize("identifier", ["nope", "00000000-0000-4000-8000-000000000000"])
def test_get_pass_unknown_returns_404(passcreator: TestClient, identifier: str) -> None:
    response = passcreator.get(f"{PASSES}/{identifier}", headers=KEY)
    assert response.status_code == 404
    assert response.json()["errors"] == ["Object not found"]
    assert response.json()["data"] == []


def test_get_pass_of_another_account_returns_404(passcreator: TestClient) -> None:
    assert passcreator.get(f"{PASSES}/{DAVID}", headers=OTHER_KEY).status_code == 404


def test_get_pass_public_base_url_follows_the_option(app_factory: AppFactory) -> None:
    app = app_factory(options=(("passcreator.public_base_url", "https://wallet.example/"),))
    with TestClient(app, base_url=BASE) as client:
        data = client.get(f"{PASSES}/{DAVID}", headers=KEY).json()["data"]
        assert data["downloadPage"] == f"https://wallet.example/passinstance/{DAVID}"


def test_list_passes_without_query_returns_the_account_passes(passcreator: TestClient) -> None:
    response = passcreator.get(PASSES, headers=KEY)
    assert response.status_code == 200
    body = response.json()
    assert [p["identifier"] for p in body["data"]] == [DAVID, RAY]
    assert body["count"] == 2
    assert body["responseMetaData"] == {"page": {"number": 1, "size": 100, "next": None}}
    assert passcreator.get(PASSES, headers=OTHER_KEY).json()["data"] == []


@pytest.mark.parametrize(
    ("query", "found"),
    [
        (where("country", "equals", ["Germany"]), ["David", "Ray"]),
        (where("country", "equals", "germany"), ["David", "Ray"]),
        (where("firstname", "notEquals", ["David"]), ["Ray"]),
        (where("firstname", "contains", ["avi", "zzz"]), ["David"]),
        (where("firstname", "doesNotContain", "a"), []),
        (where("age", "greaterThan", 30), ["Ray"]),
        (where("age", "greaterThanOrEquals", "30"), ["David", "Ray"]),
        (where("age", "lowerThan", [31]), ["David"]),
        (where("age", "lowerThanOrEquals", 29), []),
        (where("createdOn", "lowerThan", "2026-03-09 00:00:00"), ["David", "Ray"]),
        (where("userProvidedId", "beginsWith", "member-"), ["David", "Ray"]),
        (where("userProvidedId", "endsWith", "2"), ["Ray"]),
        (where("groupingIdentifier", "empty"), ["David", "Ray"]),
        (where("groupingIdentifier", "notEmpty"), []),
        (where("nickname", "empty"), ["David", "Ray"]),
        (where("voided", "isFalse"), ["David", "Ray"]),
        (where("voided", "isTrue"), []),
        (where("identifier", "equals", [RAY]), ["Ray"]),
        ({"searchPhrase": "RAY"}, ["Ray"]),
        ({"templateId": TEMPLATE}, ["David", "Ray"]),
        ({"templateId": "36d35326-16f6-4cc2-ae74-28dfc3873be3"}, []),
        ({"projectId": "p-1"}, []),
        ({"groups": []}, ["David", "Ray"]),
        (
            {
                "groups": [
                    [
                        {"field": "country", "operator": "equals", "value": "Germany"},
                        {"field": "age", "operator": "equals", "value": 31},
                    ],
                    [{"field": "firstname", "operator": "beginsWith", "value": "D"}],
                ]
            },
            ["David", "Ray"],
        ),
        (
            {
                "groups": [
                    [
                        {"field": "country", "operator": "equals", "value": "Germany"},
                        {"field": "age", "operator": "equals", "value": 31},
                    ]
                ]
            },
            ["Ray"],
        ),
    ],
)
def test_list_passes_query_selects_matching_passes(
    passcreator: TestClient, query: dict[str, object], found: list[str]
) -> None:
    assert [p["firstname"] for p in listed(passcreator, query)] == found


def test_list_passes_query_with_padding_is_accepted(passcreator: TestClient) -> None:
    raw = base64.urlsafe_b64encode(b'{"searchPhrase": "ray"}').decode()
    assert raw.endswith("=")
    response = passcreator.get(PASSES, params={"query": raw}, headers=KEY)
    assert [p["firstname"] for p in response.json()["data"]] == ["Ray"]


def test_list_passes_query_in_standard_base64_is_accepted(passcreator: TestClient) -> None:
    query = json.dumps(where("firstname", "doesNotContain", "~~~???"))
    raw = base64.b64encode(query.encode()).decode()
    assert "+" in raw
    assert "/" in raw
    for sent in (raw, raw.replace("+", " ")):
        response = passcreator.get(PASSES, params={"query": sent}, headers=KEY)
        assert [p["firstname"] for p in response.json()["data"]] == ["David", "Ray"]


def test_list_passes_pages_follow_the_next_link(passcreator: TestClient) -> None:
    bulk_create(passcreator, [{"templateId": TEMPLATE, "batch": "b"} for _ in range(5)])
    advance(passcreator, 1)
    query = encoded(where("batch", "equals", "b"))
    response = passcreator.get(PASSES, params={"query": query, "pageSize": 2}, headers=KEY)
    seen = []
    pages = 0
    while True:
        body = response.json()
        pages += 1
        seen += [p["identifier"] for p in body["data"]]
        assert body["count"] == len(body["data"])
        link = body["responseMetaData"]["page"]["next"]
        if link is None:
            break
        parts = urlsplit(link)
        assert link.startswith("http://testserver/passcreator/api/v3/pass?")
        assert parse_qs(parts.query)["query"] == [query]
        response = passcreator.get(link, headers=KEY)
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "%%%"}, "Invalid query: not base64url JSON"),
        ({"query": encoded({"groups": "all"})}, "Invalid query: groups must be a list"),
        ({"query": base64.urlsafe_b64encode(b"[1]").decode()}, "Invalid query: the query"),
        ({"query": base64.urlsafe_b64encode(b'{"x": NaN}').decode()}, "Invalid query: not"),
        ({"query": encoded({"color": "red"})}, "Invalid query: unknown key color"),
        ({"query": encoded(where("a", "equals"))}, "Invalid query: operator equals needs"),
        ({"query": encoded(where("a", "equals", [[1]]))}, "Invalid query: a value must be"),
        ({"query": encoded({"groups": [[]]})}, "Invalid query: each group must be"),
        ({"query": encoded({"groups": [["x"]]})}, "Invalid query: each condition must be"),
        ({"query": encoded({"searchPhrase": 3})}, "Invalid query: searchPhrase must be"),
        ({"pageSize": "0"}, "Invalid value for parameter pageSize."),
        ({"pageSize": "101"}, "Invalid value for parameter pageSize."),
        ({"page": "-1"}, "Invalid value for parameter page."),
        ({"page": "²"}, "Invalid value for parameter page."),
    ],
)
def test_list_passes_bad_parameters_return_400(
    passcreator: TestClient, params: dict[str, str], message: str
) -> None:
    response = passcreator.get(PASSES, params=params, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)
