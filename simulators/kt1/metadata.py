"""The Conformance statement at /FHIR/Koppeltaal/metadata.

Clients read the OAuth authorize/token URLs from
`rest[0].security.extension`; real servers use the smartplatforms.org URIs,
the documentation the smarthealthit.org ones, so both families are given.
`version` is compared as a string (`>= "v1.0"`) by the Python connector.
"""

from __future__ import annotations

from typing import Any

from ktbench.fhir.dstu1.constants import (
    AUTHORIZE_PATH,
    FHIR_VERSION,
    LAUNCH_PATH,
    MESSAGE_EVENTS_SYSTEM,
    OAUTH_URI_FAMILIES,
    TOKEN_PATH,
    VITALHEALTH_LAUNCH_EXT,
)

_RESOURCES = ("MessageHeader", "Organization", "Practitioner", "Patient", "RelatedPerson", "Device",
              "Other", "CarePlan")


def conformance(base: str, stamp: str) -> dict[str, Any]:
    security_ext = []
    for family in OAUTH_URI_FAMILIES:
        security_ext.append({"url": f"{family}#authorize", "valueUri": base + AUTHORIZE_PATH})
        security_ext.append({"url": f"{family}#token", "valueUri": base + TOKEN_PATH})
    security_ext.append({"url": VITALHEALTH_LAUNCH_EXT, "valueUri": base + LAUNCH_PATH})
    resources = []
    for rtype in _RESOURCES:
        item: dict[str, Any] = {"type": rtype, "operation": [{"code": "read"}, {"code": "search-type"}]}
        if rtype == "MessageHeader":
            item["operation"].append({"code": "update"})
            item["searchParam"] = [
                {"name": "_id", "type": "token", "documentation": "Bare id or full (versioned) URL"},
                {"name": "_count", "type": "number", "documentation": "Page size, at most 1000"},
                {"name": "_summary", "type": "token"},
                {"name": "Patient", "type": "reference"},
                {"name": "event", "type": "token"},
                {"name": "ProcessingStatus", "type": "token"},
            ]
        if rtype == "Other":
            item["operation"] += [{"code": "create"}, {"code": "update"}]
            item["searchParam"] = [{"name": "code", "type": "token"},
                                   {"name": "includearchived", "type": "token"}]
        resources.append(item)
    return {
        "resourceType": "Conformance",
        "name": "Koppeltaal",
        "publisher": "ktbench",
        "version": "v1.3.5",
        "date": stamp,
        "fhirVersion": FHIR_VERSION,
        "acceptUnknown": False,
        "format": ["json", "xml"],
        "software": {"name": "ktbench KT1 reference server"},
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{"coding": [{"system": "http://hl7.org/fhir/restful-security-service",
                                         "code": "OAuth2"}]}],
                "extension": security_ext,
            },
            "resource": resources,
            "query": [{
                "name": "MessageHeader.GetNextNewAndClaim",
                "definition": base + "/FHIR/Koppeltaal/OperationDefinition/MessageHeader.GetNextNewAndClaim",
                "documentation": "Claims and returns the oldest New message of the caller",
                "parameter": [
                    {"name": "event", "type": "token", "documentation": "Message event"},
                    {"name": "Patient", "type": "reference", "target": ["Patient"],
                     "documentation": "Patient the message is about"},
                ],
            }],
        }],
        "messaging": [{
            "endpoint": base + "/FHIR/Koppeltaal/Mailbox",
            "documentation": "Koppeltaal is message based: every change travels as a message through the Mailbox",
            "event": [_event(base, code, focus) for code, focus in _EVENT_FOCUS.items()],
        }],
    }


# The focal resource type of each message event.
_EVENT_FOCUS = {
    "CreateOrUpdateActivityDefinition": "Other",
    "CreateOrUpdateCarePlan": "CarePlan",
    "CreateOrUpdateCarePlanActivityResult": "Other",
    "CreateOrUpdatePatient": "Patient",
    "CreateOrUpdatePractitioner": "Practitioner",
    "CreateOrUpdateRelatedPerson": "RelatedPerson",
    "CreateOrUpdateUserMessage": "Other",
    "UpdateCarePlanActivityStatus": "Other",
}


def _event(base: str, code: str, focus: str) -> dict[str, Any]:
    return {
        "code": {"system": MESSAGE_EVENTS_SYSTEM, "code": code},
        "category": "Notification",
        "mode": "receiver",
        "protocol": [{"system": "http://hl7.org/fhir/message-transport", "code": "http"}],
        "focus": focus,
        "request": {"reference": f"{base}/FHIR/Koppeltaal/Profile/{focus}"},
        "response": {"reference": f"{base}/FHIR/Koppeltaal/Profile/MessageHeader"},
    }
