"""The KT2 reference voorziening: FHIR R4 store, SMART authorisation server, identity provider and domain admin.

One ASGI app over one SQLite file (`ktbench serve kt2`); see simulators/kt2/README.md for the URL layout,
the data file and the choices made where the sources contradict each other.
"""
