"""KT1 server: routing a Mailbox message to every subscribed application of the domain (kt1-protocol §2.4, §2.6).

Subscriptions come from the data file (`events` per application): portal = all
events, module = care events, observer = CreateOrUpdatePatient only.  The
sender gets its own copy when subscribed; other domains never do.
"""

from __future__ import annotations

import re

import pytest
from kt1_builders import EXT_IS_EXPIRED, EXT_PATIENT, Kt1World, ack_body, ext_value, processing_status
from kt1_support import MH, kt1, self_link  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

ALL = ("portal", "module", "observer", "beta-portal", "beta-module")


def _mailboxes(kt1) -> dict[str, list[str]]:
    return {who: [h["identifier"] for h in kt1.headers_of(who)] for who in ALL}


def _ident(bundle) -> str:
    return bundle["entry"][0]["content"]["identifier"]


@pytest.mark.parametrize("sender, event, receivers", [
    ("portal", "CreateOrUpdateCarePlan", {"portal", "module"}),
    ("module", "CreateOrUpdateCarePlan", {"portal", "module"}),
    ("portal", "CreateOrUpdatePatient", {"portal", "module", "observer"}),
    ("observer", "CreateOrUpdatePatient", {"portal", "module", "observer"}),
    ("observer", "CreateOrUpdateCarePlan", {"portal", "module"}),   # sender not subscribed: no own copy
    ("portal", "CreateOrUpdateActivityDefinition", {"portal"}),
], ids=lambda v: v if isinstance(v, str) else "+".join(sorted(v)))
def test_a_copy_goes_to_every_subscribed_application_of_the_domain(kt1, sender, event, receivers):
    world = Kt1World(seed=20)
    careplan, patient, practitioner, related = world.careplan_set()
    if event == "CreateOrUpdateCarePlan":
        bundle = world.careplan_message(careplan, patient, practitioner, related)
    else:
        bundle = world.message(event, patient)
    kt1.send(bundle, who=sender)
    boxes = _mailboxes(kt1)
    for who in ALL:
        assert boxes[who] == ([_ident(bundle)] if who in receivers else []), who


def test_beta_messages_stay_in_beta(kt1):
    world = Kt1World(seed=21, domain="ktbench-beta")
    careplan, patient, practitioner, related = world.careplan_set()
    bundle = world.careplan_message(careplan, patient, practitioner, related)
    kt1.send(bundle, who="beta-portal")
    boxes = _mailboxes(kt1)
    assert boxes["beta-portal"] == boxes["beta-module"] == [_ident(bundle)]
    assert boxes["portal"] == boxes["module"] == boxes["observer"] == []


def test_each_recipient_has_its_own_copy(kt1):
    world = Kt1World(seed=22)
    kt1.send(world.careplan_message(*world.careplan_set()))
    claimed = kt1.claimed("module")["entry"][0]
    assert kt1.request("PUT", self_link(claimed), "module",
                       json=ack_body(claimed["content"], "Success")).status_code == 200
    assert processing_status(kt1.headers_of("module")[0])["status"] == "Success"
    assert processing_status(kt1.headers_of("portal")[0])["status"] == "New"
    assert kt1.headers_of("module")[0]["identifier"] == kt1.headers_of("portal")[0]["identifier"]


def test_delivered_message_has_the_shape_the_connector_unpacks(kt1):
    world = Kt1World(seed=23)
    careplan, patient, practitioner, related = world.careplan_set()
    sent = world.careplan_message(careplan, patient, practitioner, related)
    world.learn(kt1.send(sent))
    bundle = kt1.claimed("module")
    assert "next" not in {link["rel"] for link in bundle["link"]}
    assert any(c["term"].endswith("Domain#ktbench-alpha") for c in bundle["category"])
    head, *resources = bundle["entry"]
    match = re.fullmatch(re.escape(kt1.url + MH) + r"/(\d+)", head["id"])
    assert match, head["id"]
    assert head["title"] == f"MessageHeader with IID={match[1]}"
    assert self_link(head).startswith(head["id"] + "/_history/")
    header = head["content"]
    assert header["identifier"] == sent["entry"][0]["content"]["identifier"]
    assert ext_value(header, EXT_PATIENT) == {"reference": patient.url}
    state = processing_status(header)
    assert state["status"] == "Claimed" and state["last_changed"]
    assert ext_value(header, EXT_IS_EXPIRED) is False
    # exactly one data reference: the focal resource's versioned link, which resolves in the bundle
    assert header["data"] == [{"reference": careplan.self_href}]
    assert self_link(resources[0]) == careplan.self_href
    by_id = {e["id"]: e for e in resources}
    assert list(by_id) == [careplan.url, patient.url, practitioner.url, related.url]
    for res in (careplan, patient, practitioner, related):
        assert self_link(by_id[res.url]) == res.self_href  # the versions the Mailbox reply announced
        assert by_id[res.url]["content"] == res.content
