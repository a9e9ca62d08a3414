"""Steps of what a subscriber (portal or module under test) does with a notification (kt2-protocol.md §4.5):
record the `receive` AuditEvent and search the Subscription's criteria again with X-Correlation-Id = the
notification's X-Request-Id.

The notification goes from the bench's voorziening straight to the application, so the bench learns its
X-Request-Id from the voorziening's own transmit AuditEvent (bench.notification_request_ids).  What the
application does afterwards arrives at the recording: the AuditEvent it POSTs and the search it sends.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from pytest_bdd import given, parsers, then, when

from ktbench.core.errors import BenchError
from ktbench.core.requirements import require
from simulators.kt2.actors import resources
from simulators.kt2.actors.resources import KT
from steps.kt2_apps.bench import notification_request_ids
from steps.kt2_apps.steps_path_b import _await
from steps.kt2_apps.world import AppWorld, given_ok, is_fhir, json_of

LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"


def _rid(world: AppWorld) -> str:
    return f"KT2-APP-{world.bench.role.upper()}-RECEIVE-AUDIT"


@given(parsers.re(r'the (?P<who>portal|module) has subscribed to "(?P<criteria>[^"]+)"'))
def has_subscribed(kt2app: AppWorld, who: str, criteria: str) -> None:
    kt2app.act("subscribe", f"Subscribe to {criteria} with a rest-hook to your own notification endpoint.",
               criteria=criteria)
    made = kt2app.wait(lambda i: is_fhir(i, "POST", "Subscription")
                       and urlsplit(i.path).path.endswith("/fhir/r4/Subscription"), "create a Subscription")
    given_ok(made.status == 201, _rid(kt2app), f"the Subscription was refused with HTTP {made.status}")
    kt2app.notes["subscription_id"] = json_of(made.response_body).get("id")
    kt2app.notes["criteria"] = criteria


@when("the bench's module publishes another activity")
def bench_publishes(kt2app: AppWorld) -> None:
    actor = kt2app.bench.actor
    kt2app.server_mark = kt2app.bench.server_log.mark()
    endpoint = actor.create(resources.endpoint(actor.launch_url, "ktbench module (the bench)"))
    if endpoint.status_code != 201:
        raise BenchError(f"the bench's module could not create an Endpoint: HTTP {endpoint.status_code}")
    code = f"ktbench-activity-{uuid.uuid4().hex[:8]}"
    body = resources.activity_definition(endpoint.json()["id"], title="Stemmingsdagboek", publisher_id=code)
    body["identifier"][0]["value"] = code
    if actor.create(body).status_code != 201:
        raise BenchError("the bench's module could not publish another activity")


def _notified(world: AppWorld) -> list[str]:
    """The X-Request-Ids of the notifications sent for the scenario's Subscription (waits for one)."""
    deadline = time.monotonic() + max(world.settings.traffic_timeout_seconds, 5.0)
    while True:
        ids = notification_request_ids(world.bench, world.notes["subscription_id"])
        if ids or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    given_ok(ids, _rid(world), "the bench's voorziening sent no notification for the Subscription (a change of "
                               "the bench's did not match its criteria, or the delivery failed)")
    return ids


def _codes(value: Any) -> set[tuple[str, str]]:
    return {(str(value.get("system")), str(value.get("code")))} if isinstance(value, dict) else set()


@then(parsers.re(r"the (?P<who>portal|module) wrote a receive AuditEvent for the notification"))
def receive_audit(kt2app: AppWorld, who: str) -> None:
    rid = _rid(kt2app)
    ids = _notified(kt2app)
    item = _await(kt2app, lambda i: is_fhir(i, "POST", "AuditEvent")
                  and (LIFECYCLE, "receive") in _codes(json_of(i.request_body).get("type")))
    require(item is not None, rid, f"a notification was delivered, but the {who} wrote no AuditEvent of type "
                                   f"{LIFECYCLE}#receive within {kt2app.settings.traffic_timeout_seconds:g} s")
    body = json_of(item.request_body)
    correlation = [e.get("valueId") for e in body.get("extension") or []
                   if isinstance(e, dict) and e.get("url") == KT + "correlation-id"]
    require(correlation and correlation[0] in ids, rid, f"the receive AuditEvent's correlation-id is {correlation!r}, "
                                                         "not the notification's X-Request-Id")
    whats = [str((e.get("what") or {}).get("reference", "")) for e in body.get("entity") or [] if isinstance(e, dict)]
    subscription = f"Subscription/{kt2app.notes['subscription_id']}"
    require(subscription in whats, rid, f"the receive AuditEvent's entity names {whats!r}, not {subscription}")
    require(item.status == 201, rid, f"the voorziening refused the receive AuditEvent with HTTP {item.status}")


@then(parsers.re(r"the (?P<who>portal|module) searched its criteria again with X-Correlation-Id of the "
                 r"notification"))
def requery(kt2app: AppWorld, who: str) -> None:
    rid = _rid(kt2app)
    ids = _notified(kt2app)
    rtype = kt2app.notes["criteria"].split("?", 1)[0]
    item = _await(kt2app, lambda i: i.method == "GET" and urlsplit(i.path).path.endswith(f"/fhir/r4/{rtype}"))
    require(item is not None, rid, f"a notification was delivered, but the {who} did not search {rtype} again "
                                   f"within {kt2app.settings.traffic_timeout_seconds:g} s")
    sent = item.header("x-correlation-id")
    require(sent, rid, f"the {who}'s search of {rtype} after the notification carries no X-Correlation-Id")
    require(sent in ids, rid, f"the {who}'s search after the notification carries X-Correlation-Id {sent!r}, not "
                              "the notification's X-Request-Id")
