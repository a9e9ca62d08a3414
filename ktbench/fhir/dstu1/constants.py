"""Names, URLs and codes of Koppeltaal 1.3 shared by the server, the suite and the validator.

Kept in one place so a code typo cannot make the simulator and the suite agree
with each other while both disagree with the standard.
"""

from __future__ import annotations

NAMESPACE = "http://ggz.koppeltaal.nl/fhir/Koppeltaal/"
FHIR_VERSION = "0.0.82"

# Server paths (relative to the server root)
FHIR_BASE_PATH = "/FHIR/Koppeltaal"
METADATA_PATH = FHIR_BASE_PATH + "/metadata"
MAILBOX_PATH = FHIR_BASE_PATH + "/Mailbox"
OTHER_PATH = FHIR_BASE_PATH + "/Other"
OTHER_SEARCH_PATH = FHIR_BASE_PATH + "/Other/_search"
MESSAGE_HEADER_PATH = FHIR_BASE_PATH + "/MessageHeader"
MESSAGE_HEADER_SEARCH_PATH = FHIR_BASE_PATH + "/MessageHeader/_search"
OAUTH_BASE_PATH = "/OAuth2/Koppeltaal"
LAUNCH_PATH = OAUTH_BASE_PATH + "/Launch"
MOBILE_LAUNCH_PATH = OAUTH_BASE_PATH + "/MobileLaunch"
AUTHORIZE_PATH = OAUTH_BASE_PATH + "/Authorize"
TOKEN_PATH = OAUTH_BASE_PATH + "/Token"

CLAIM_QUERY = "MessageHeader.GetNextNewAndClaim"

# Atom / bundle categories
DOMAIN_TAG_PREFIX = NAMESPACE + "Domain#"
SECURITY_TAG_SCHEME = "http://hl7.org/fhir/tag/security"
MESSAGE_TAG_TERM = "http://hl7.org/fhir/tag/message"
TAG_SCHEME = "http://hl7.org/fhir/tag"
PROFILE_TAG_SCHEME = "http://hl7.org/fhir/tag/profile"
ATOM_NS = "http://www.w3.org/2005/Atom"
FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"

# Code systems
MESSAGE_EVENTS_SYSTEM = NAMESPACE + "MessageEvents"
OTHER_USAGE_SYSTEM = NAMESPACE + "OtherResourceUsage"
PROCESSING_STATUS_SYSTEM = NAMESPACE + "ProcessingStatus"
ISSUE_TYPE_SYSTEM = "http://hl7.org/fhir/issue-type"
RESPONSE_CODE_SYSTEM = "http://hl7.org/fhir/response-code"

MESSAGE_EVENTS = (
    "CreateOrUpdateActivityDefinition",
    "CreateOrUpdateCarePlan",
    "CreateOrUpdateCarePlanActivityResult",
    "CreateOrUpdatePatient",
    "CreateOrUpdatePractitioner",
    "CreateOrUpdateRelatedPerson",
    "CreateOrUpdateUserMessage",
    "UpdateCarePlanActivityStatus",
)

PROCESSING_STATUSES = (
    "New",
    "Claimed",
    "Success",
    "Failed",
    "ReplacedByNewVersion",
    "MaximumRetriesExceeded",
)

# Other.code values: the documented ones plus what real clients send (BlackBoxState, StorageItem).
OTHER_RESOURCE_USAGES = (
    "ActivityDefinition",
    "BlackBoxState",
    "CarePlanActivityResult",
    "CarePlanActivityStatus",
    "CareTeam",
    "StorageItem",
    "UserMessage",
)

CAREPLAN_ACTIVITY_STATUSES = (
    "Available",
    "Cancelled",
    "Completed",
    "Expired",
    "InProgress",
    "SkippedByUser",
    "Waiting",
)

ACTIVITY_KINDS = ("ELearning", "Game", "Meeting", "MultipleActivityTemplate", "Questionnaire")
LAUNCH_TYPES = ("Mobile", "None", "Web")

# Resource types a Mailbox bundle may carry (anything else: "The resource type 'X' is not supported").
SUPPORTED_RESOURCE_TYPES = (
    "MessageHeader",
    "Organization",
    "Practitioner",
    "Patient",
    "RelatedPerson",
    "Device",
    "Other",
    "CarePlan",
)

# MessageHeader extensions
EXT_PATIENT = NAMESPACE + "MessageHeader#Patient"
EXT_PROCESSING_STATUS = NAMESPACE + "MessageHeader#ProcessingStatus"
EXT_PS_STATUS = NAMESPACE + "MessageHeader#ProcessingStatusStatus"
EXT_PS_LAST_CHANGED = NAMESPACE + "MessageHeader#ProcessingStatusStatusLastChanged"
EXT_PS_EXCEPTION = NAMESPACE + "MessageHeader#ProcessingStatusException"
EXT_IS_EXPIRED = NAMESPACE + "MessageHeader#IsExpired"
EXT_ISSUE_RESOURCE = NAMESPACE + "OperationOutcome#IssueResource"

# ActivityDefinition (as Other) extensions
AD_PREFIX = NAMESPACE + "ActivityDefinition#"
AD_IDENTIFIER_SYSTEM = NAMESPACE + "Profile/ActivityDefinition#ActivityDefinitionIdentifier"

# Exact OperationOutcome texts real clients compare against (kt1-protocol.md §2.4).
TEXT_NO_FOCAL_VERSION = "No version specified for the focal resource, message is rejected."
TEXT_WRONG_VERSION = "The specified resource version is not correct"

# Smart-on-FHIR OAuth URIs advertised in the Conformance statement (both URI families).
OAUTH_URI_FAMILIES = (
    "http://fhir-registry.smartplatforms.org/Profile/oauth-uris",
    "http://fhir-registry.smarthealthit.org/Profile/oauth-uris",
)
VITALHEALTH_LAUNCH_EXT = "http://fhir.vitalhealthsoftware.com/Profile/Conformance#Launch"

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
XML_CONTENT_TYPE = "application/xml; charset=utf-8"
