"""DSTU1 (FHIR 0.0.82) element table used by :mod:`ktbench.fhir.dstu1.xmlcodec`.

Why a table: DSTU1 XML carries no type information. Whether ``<given value="x"/>`` becomes
``"given": ["x"]`` or ``"given": "x"`` in JSON, or whether ``<prohibited value="false"/>`` becomes the
boolean ``false``, depends on the element's cardinality and type in the schema. The codec needs that
per *context* (``name`` repeats in Patient but not in Practitioner; ``identifier`` is a string in
MessageHeader and an Identifier list in Patient), so this module keeps, per complex type, its element
list in XSD order (the order is reused to write schema-ordered XML).

The data was derived from ``fhir-single.xsd`` (FHIR v0.0.82 as shipped by koppeltaal-schema, including the
Koppeltaal patch that types ``CarePlan.Activity.goal`` as ``string``) for the resources Koppeltaal uses and
every data type they reach. It is data, not code; nothing is read from the XSDs at run time.

Field notation (space separated): ``name`` = string-like primitive, ``name:bool`` / ``name:int`` /
``name:dec`` = boolean / integer / decimal primitive, ``name:Type`` = complex type, ``*`` = repeats
(maxOccurs="unbounded"). Each type names its base: Element adds ``extension``, BackboneElement adds
``modifierExtension``, Resource adds ``language``, ``text`` (Narrative) and ``contained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

# Resource element names of DSTU1 0.0.82 (ResourceType enumeration of fhir-base.xsd, plus Binary).
RESOURCE_NAMES: frozenset[str] = frozenset(
    """
    AdverseReaction Alert AllergyIntolerance Binary CarePlan Composition ConceptMap Condition Conformance
    Device DeviceObservationReport DiagnosticOrder DiagnosticReport DocumentManifest DocumentReference
    Encounter FamilyHistory Group ImagingStudy Immunization ImmunizationRecommendation List Location Media
    Medication MedicationAdministration MedicationDispense MedicationPrescription MedicationStatement
    MessageHeader Observation OperationOutcome Order OrderResponse Organization Other Patient Practitioner
    Procedure Profile Provenance Query Questionnaire RelatedPerson SecurityEvent Specimen Substance Supply
    ValueSet
    """.split()
)

PRIMITIVE_KINDS = frozenset({"str", "bool", "int", "dec"})
XHTML_KIND = "xhtml"  # Narrative.div: an XHTML element in XML, a string in JSON
RESOURCE_KIND = "resource"  # Resource.contained: an inline resource

_BASES: dict[str, str] = {
    "Element": "extension:Extension*",
    "BackboneElement": "extension:Extension* modifierExtension:Extension*",
    "Resource": "extension:Extension* modifierExtension:Extension* language text:Narrative contained:resource*",
}

_TABLE: dict[str, tuple[str, str]] = {
    "Narrative": ("Element", "status div:xhtml"),
    "Patient": ("Resource",
        "identifier:Identifier* name:HumanName* telecom:Contact* gender:CodeableConcept birthDate "
        "deceasedBoolean:bool deceasedDateTime address:Address* maritalStatus:CodeableConcept "
        "multipleBirthBoolean:bool multipleBirthInteger:int photo:Attachment* contact:Patient.Contact* "
        "animal:Patient.Animal communication:CodeableConcept* careProvider:ResourceReference* "
        "managingOrganization:ResourceReference link:Patient.Link* active:bool"),
    "Practitioner": ("Resource",
        "identifier:Identifier* name:HumanName telecom:Contact* address:Address gender:CodeableConcept "
        "birthDate photo:Attachment* organization:ResourceReference role:CodeableConcept* "
        "specialty:CodeableConcept* period:Period location:ResourceReference* "
        "qualification:Practitioner.Qualification* communication:CodeableConcept*"),
    "RelatedPerson": ("Resource",
        "identifier:Identifier* patient:ResourceReference relationship:CodeableConcept name:HumanName "
        "telecom:Contact* gender:CodeableConcept address:Address photo:Attachment*"),
    "Organization": ("Resource",
        "identifier:Identifier* name type:CodeableConcept telecom:Contact* address:Address* "
        "partOf:ResourceReference contact:Organization.Contact* location:ResourceReference* active:bool"),
    "Device": ("Resource",
        "identifier:Identifier* type:CodeableConcept manufacturer model version expiry udi lotNumber "
        "owner:ResourceReference location:ResourceReference patient:ResourceReference contact:Contact* url"),
    "CarePlan": ("Resource",
        "identifier:Identifier* patient:ResourceReference status period:Period modified "
        "concern:ResourceReference* participant:CarePlan.Participant* goal:CarePlan.Goal* "
        "activity:CarePlan.Activity* notes"),
    "Other": ("Resource",
        "identifier:Identifier* code:CodeableConcept subject:ResourceReference author:ResourceReference "
        "created"),
    "MessageHeader": ("Resource",
        "identifier timestamp event:Coding response:MessageHeader.Response source:MessageHeader.Source "
        "destination:MessageHeader.Destination* enterer:ResourceReference author:ResourceReference "
        "receiver:ResourceReference responsible:ResourceReference reason:CodeableConcept "
        "data:ResourceReference*"),
    "OperationOutcome": ("Resource", "issue:OperationOutcome.Issue*"),
    "Conformance": ("Resource",
        "identifier version name publisher telecom:Contact* description status experimental:bool date "
        "software:Conformance.Software implementation:Conformance.Implementation fhirVersion "
        "acceptUnknown:bool format* profile:ResourceReference* rest:Conformance.Rest* "
        "messaging:Conformance.Messaging* document:Conformance.Document*"),
    "Extension": ("Element",
        "valueBoolean:bool valueInteger:int valueDecimal:dec valueBase64Binary valueInstant valueString "
        "valueUri valueDate valueDateTime valueCode valueAttachment:Attachment valueIdentifier:Identifier "
        "valueCodeableConcept:CodeableConcept valueCoding:Coding valueQuantity:Quantity valueRange:Range "
        "valuePeriod:Period valueRatio:Ratio valueResource:ResourceReference valueSampledData:SampledData "
        "valueHumanName:HumanName valueAddress:Address valueContact:Contact valueSchedule:Schedule"),
    "Identifier": ("Element", "use label system value period:Period assigner:ResourceReference"),
    "HumanName": ("Element", "use text family* given* prefix* suffix* period:Period"),
    "Contact": ("Element", "system value use period:Period"),
    "CodeableConcept": ("Element", "coding:Coding* text"),
    "Address": ("Element", "use text line* city state zip country period:Period"),
    "Attachment": ("Element", "contentType language data url size:int hash title"),
    "Patient.Contact": ("BackboneElement",
        "relationship:CodeableConcept* name:HumanName telecom:Contact* address:Address gender:CodeableConcept "
        "organization:ResourceReference"),
    "Patient.Animal": ("BackboneElement",
        "species:CodeableConcept breed:CodeableConcept genderStatus:CodeableConcept"),
    "ResourceReference": ("Element", "reference display"),
    "Patient.Link": ("BackboneElement", "other:ResourceReference type"),
    "Period": ("Element", "start end"),
    "Practitioner.Qualification": ("BackboneElement", "code:CodeableConcept period:Period issuer:ResourceReference"),
    "Organization.Contact": ("BackboneElement",
        "purpose:CodeableConcept name:HumanName telecom:Contact* address:Address gender:CodeableConcept"),
    "CarePlan.Participant": ("BackboneElement", "role:CodeableConcept member:ResourceReference"),
    "CarePlan.Goal": ("BackboneElement", "description status notes concern:ResourceReference*"),
    "CarePlan.Activity": ("BackboneElement",
        "goal* status prohibited:bool actionResulting:ResourceReference* notes detail:ResourceReference "
        "simple:CarePlan.Simple"),
    "Coding": ("Element", "system version code display primary:bool valueSet:ResourceReference"),
    "MessageHeader.Response": ("BackboneElement", "identifier code details:ResourceReference"),
    "MessageHeader.Source": ("BackboneElement", "name software version contact:Contact endpoint"),
    "MessageHeader.Destination": ("BackboneElement", "name target:ResourceReference endpoint"),
    "OperationOutcome.Issue": ("BackboneElement", "severity type:Coding details location*"),
    "Conformance.Software": ("BackboneElement", "name version releaseDate"),
    "Conformance.Implementation": ("BackboneElement", "description url"),
    "Conformance.Rest": ("BackboneElement",
        "mode documentation security:Conformance.Security resource:Conformance.Resource* "
        "operation:Conformance.Operation1* query:Conformance.Query* documentMailbox*"),
    "Conformance.Messaging": ("BackboneElement", "endpoint reliableCache:int documentation event:Conformance.Event*"),
    "Conformance.Document": ("BackboneElement", "mode documentation profile:ResourceReference"),
    "Quantity": ("Element", "value:dec comparator units system code"),
    "Range": ("Element", "low:Quantity high:Quantity"),
    "Ratio": ("Element", "numerator:Quantity denominator:Quantity"),
    "SampledData": ("Element",
        "origin:Quantity period:dec factor:dec lowerLimit:dec upperLimit:dec dimensions:int data"),
    "Schedule": ("Element", "event:Period* repeat:Schedule.Repeat"),
    "CarePlan.Simple": ("BackboneElement",
        "category code:CodeableConcept timingSchedule:Schedule timingPeriod:Period timingString "
        "location:ResourceReference performer:ResourceReference* product:ResourceReference "
        "dailyAmount:Quantity quantity:Quantity details"),
    "Conformance.Security": ("BackboneElement",
        "cors:bool service:CodeableConcept* description certificate:Conformance.Certificate*"),
    "Conformance.Resource": ("BackboneElement",
        "type profile:ResourceReference operation:Conformance.Operation* readHistory:bool updateCreate:bool "
        "searchInclude* searchParam:Conformance.SearchParam*"),
    "Conformance.Operation1": ("BackboneElement", "code documentation"),
    "Conformance.Query": ("BackboneElement", "name definition documentation parameter:Conformance.SearchParam*"),
    "Conformance.Event": ("BackboneElement",
        "code:Coding category mode protocol:Coding* focus request:ResourceReference "
        "response:ResourceReference documentation"),
    "Schedule.Repeat": ("Element", "frequency:int when duration:dec units count:int end"),
    "Conformance.Certificate": ("BackboneElement", "type blob"),
    "Conformance.Operation": ("BackboneElement", "code documentation"),
    "Conformance.SearchParam": ("BackboneElement", "name definition type documentation target* chain*"),
}


@dataclass(frozen=True, slots=True)
class Field:
    """One element of a complex type: JSON/XML name, kind (primitive kind or complex type name), repeats."""

    name: str
    kind: str
    array: bool


def _parse_fields(spec: str) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for token in spec.split():
        array = token.endswith("*")
        token = token.rstrip("*")
        name, _, kind = token.partition(":")
        fields[name] = Field(name, kind or "str", array)
    return fields


def _compile() -> dict[str, Mapping[str, Field]]:
    compiled: dict[str, Mapping[str, Field]] = {}
    for type_name, (base, spec) in _TABLE.items():
        fields = _parse_fields(_BASES[base])
        fields.update(_parse_fields(spec))
        compiled[type_name] = MappingProxyType(fields)
    return compiled


TYPES: Mapping[str, Mapping[str, Field]] = MappingProxyType(_compile())
"""Complex type name -> its fields in XSD order (base elements first)."""


def _fallback_sets() -> tuple[frozenset[str], dict[str, str]]:
    """Names whose cardinality / primitive kind is the same in every known context.

    Used for elements of types the table does not cover (e.g. a Condition resource), so a lone
    ``<coding>`` still becomes a list and ``<active value="true"/>`` still becomes a boolean.
    """
    arrays: dict[str, bool] = {}
    kinds: dict[str, set[str]] = {}
    for fields in TYPES.values():
        for field in fields.values():
            arrays[field.name] = arrays.get(field.name, True) and field.array
            kinds.setdefault(field.name, set()).add(field.kind)
    always_array = frozenset(name for name, flag in arrays.items() if flag)
    typed = {
        name: next(iter(found))
        for name, found in kinds.items()
        if len(found) == 1 and next(iter(found)) in {"bool", "int", "dec"}
    }
    return always_array, typed


ALWAYS_ARRAY, ALWAYS_TYPED = _fallback_sets()

_CHOICE_SUFFIX_KINDS = (("Boolean", "bool"), ("Integer", "int"), ("Decimal", "dec"))
_EXTENSION_FIELD = Field("extension", "Extension", True)
_MODIFIER_EXTENSION_FIELD = Field("modifierExtension", "Extension", True)


@lru_cache(maxsize=2048)
def guess_field(name: str) -> Field:
    """Best guess for an element the table does not list in the current context.

    Cached (bounded, names come from untrusted documents): the codec asks for the same few names --
    ``extension``, elements of resources outside the table -- again and again.
    """
    if name == "extension":
        return _EXTENSION_FIELD
    if name == "modifierExtension":
        return _MODIFIER_EXTENSION_FIELD
    kind = ALWAYS_TYPED.get(name)
    if kind is None:
        for suffix, suffix_kind in _CHOICE_SUFFIX_KINDS:
            if name.endswith(suffix) and len(name) > len(suffix) and name[0].islower():
                kind = suffix_kind
                break
    return Field(name, kind or "str", name in ALWAYS_ARRAY)
