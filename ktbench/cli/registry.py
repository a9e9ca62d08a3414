"""Which generations this process knows: built-ins, installed entry points, and --generation options."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from ktbench.core.generation import GenerationRegistry
from ktbench.generations import BUILTIN

ENTRY_POINT_GROUP = "ktbench.generations"


def build_registry(extra: Iterable[str] = ()) -> GenerationRegistry:
    """Raises ConfigurationError (one clear sentence) for a generation that cannot be loaded."""
    registry = GenerationRegistry()
    for path in BUILTIN.values():
        registry.load(path)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        registry.load(point.value)
    for path in extra:
        registry.load(path)
    return registry


def registry_from_context(ctx: object) -> GenerationRegistry:
    obj = getattr(ctx, "obj", None) or {}
    return build_registry(obj.get("generations", ()))
