"""FHIR vocabulary and helpers: version-neutral ones here, one subpackage per FHIR version a generation speaks
(dstu1 for KT1.3; R4 vocabulary for KT2 lives with its validator profiles and simulators)."""
