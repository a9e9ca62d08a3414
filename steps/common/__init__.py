"""Generic steps every suite can use (steps.common.http) and their scenario context.

pytest-bdd registers each step definition as a fixture in the namespace of the module that defines it; the
star import below carries those fixtures here, and steps/conftest.py star-imports this package so every
suite sees them (so no __all__ here: it would hide them).
"""

from steps.common.http import *  # noqa: F403
from steps.common.http import MISSING, ScenarioContext, json_path, target_url  # noqa: F401
