"""Versioning: meta.versionId, lastUpdated in milliseconds, weak ETags, If-Match on PUT (412 without, 409 stale),
DELETE with If-Match, concurrent updates with exactly one winner (KT2-VER-*)."""

from __future__ import annotations

import json
import threading

import httpx
from kt2_support import (  # noqa: F401
    FHIR_JSON,
    issues,
    jwks_host,
    kt2,
    no_unhandled_errors,
    patient,
    updated,
)

from simulators.kt2.fhir.instants import parse_instant_ms


def _created(kt2) -> tuple[dict, str]:
    body = kt2.create("alpha-portal", patient())
    return body, f"Patient/{body['id']}"


def test_put_without_if_match_is_412(kt2):
    body, path = _created(kt2)
    answer = kt2.put("alpha-portal", path, body)
    assert answer.status_code == 412
    assert "If-Match" in issues(answer)[0]["diagnostics"]
    assert kt2.get("alpha-portal", path).json()["meta"]["versionId"] == "1"


def test_stale_if_match_is_409_and_fresh_one_wins(kt2):
    body, path = _created(kt2)
    assert kt2.put("alpha-portal", path, updated(body, active=False), version="1").status_code == 200
    stale = kt2.put("alpha-portal", path, updated(body, active=True), version="1")
    assert stale.status_code == 409 and issues(stale)[0]["code"] == "conflict"
    fresh = kt2.put("alpha-portal", path, updated(body, active=True), version="2")
    assert fresh.status_code == 200 and fresh.headers["etag"] == 'W/"3"'


def test_if_match_forms(kt2):
    body, path = _created(kt2)
    assert kt2.put("alpha-portal", path, body, **{"If-Match": '"1"'}).status_code == 200
    assert kt2.put("alpha-portal", path, body, **{"If-Match": "*"}).status_code == 200
    assert kt2.put("alpha-portal", path, body, **{"If-Match": "W/\"abc\""}).status_code == 400
    assert kt2.put("alpha-portal", path, body, **{"If-Match": "W/\"99\""}).status_code == 409


def test_delete_with_stale_if_match_is_409_with_fresh_or_none_allowed(kt2):
    body, path = _created(kt2)
    kt2.put("alpha-portal", path, updated(body, active=False), version="1")
    assert kt2.delete("alpha-portal", path, **{"If-Match": 'W/"1"'}).status_code == 409
    assert kt2.get("alpha-portal", path).status_code == 200
    assert kt2.delete("alpha-portal", path, **{"If-Match": 'W/"2"'}).status_code == 200
    _, other = _created(kt2)
    assert kt2.delete("alpha-portal", other).status_code == 200


def test_versions_and_last_updated_advance(kt2):
    body, path = _created(kt2)
    first = parse_instant_ms(body["meta"]["lastUpdated"])
    assert first[1] - first[0] == 1              # millisecond precision
    second = kt2.put("alpha-portal", path, updated(body, active=False), version="1").json()
    assert second["meta"]["versionId"] == "2"
    assert parse_instant_ms(second["meta"]["lastUpdated"])[0] >= first[0]
    read = kt2.get("alpha-portal", path)
    assert read.headers["etag"] == 'W/"2"' and read.headers["last-modified"]


def test_client_meta_version_is_ignored_on_write(kt2):
    body = patient()
    body["meta"]["versionId"] = "77"
    body["meta"]["lastUpdated"] = "2001-01-01T00:00:00Z"
    created = kt2.create("alpha-portal", body)
    assert created["meta"]["versionId"] == "1" and not created["meta"]["lastUpdated"].startswith("2001")


def test_concurrent_updates_have_exactly_one_winner(kt2):
    body, path = _created(kt2)
    url = f"{kt2.base()}/{path}"
    headers = {**kt2.headers("alpha-portal"), "Content-Type": FHIR_JSON, "If-Match": 'W/"1"'}
    statuses: list[int] = []
    start = threading.Barrier(8)

    def attempt(i: int) -> None:
        with httpx.Client(timeout=15) as client:
            start.wait()
            answer = client.put(url, content=json.dumps(updated(body, gender="female" if i % 2 else "male")),
                                headers=headers)
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * 7
    history = kt2.get("alpha-portal", f"{path}/_history").json()
    assert history["total"] == 2
