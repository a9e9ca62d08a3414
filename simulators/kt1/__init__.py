"""The KT1.3 reference server (FHIR DSTU1 messaging) and its building blocks.

`simulators.kt1.app.create_app` builds the ASGI app; `simulators.kt1.embedded`
runs it on 127.0.0.1 in a background thread for tests and `ktbench run`.
"""
