"""The S3-style ``NoSuchKey`` answer names the key as well-formed XML, whatever the key."""

from __future__ import annotations

from urllib.parse import quote
from xml.etree import ElementTree

from starlette.testclient import TestClient


def test_no_such_key_escapes_the_key(deepvue: TestClient) -> None:
    key = "other/a<b>&c\"d'<Injected>x.csv"
    response = deepvue.get(f"/bulk-data-processing/{quote(key)}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Error"
    assert root.findtext("Code") == "NoSuchKey"
    assert root.findtext("Key") == key
    assert root.find("Injected") is None
