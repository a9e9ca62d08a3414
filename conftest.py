"""Repo-root pytest configuration, shared by the bench's own tests (tests/) and the suites (steps/).

Loads ktbench.runner.plugin, so `pytest steps/kt1 --kt-target URL` works without `ktbench run`; the
plugin is inert unless --kt-target/--kt-suite is given, so the bench's own tests are unaffected.

The rest of the configuration is in pyproject.toml [tool.pytest.ini_options]: `testpaths = ["tests"]`
(a bare `pytest -n 2` runs the bench's own tests, never the suites, which need a target) and
`-p no:allure_pytest` (allure-pytest and allure-pytest-bdd register the same --alluredir option and
cannot both be active; ktbench reports Gherkin scenarios through allure-pytest-bdd).
"""

from __future__ import annotations

pytest_plugins = ["ktbench.runner.plugin"]
