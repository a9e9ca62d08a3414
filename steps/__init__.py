"""Gherkin step definitions (pytest-bdd glue), one sub-package per suite.

Steps stay thin: parse the step text, call the client layer or a simulated
actor, assert with the requirement id.  Generic steps shared by every suite
live in `steps.common` and are made available to all suites by
`steps/conftest.py`.
"""
