"""Koppeltaal 1.3 (FHIR DSTU1 0.0.82) vocabulary and representation helpers."""
