"""Readers of outside formats (FMK XML, FHIR R4) that produce domain objects."""
