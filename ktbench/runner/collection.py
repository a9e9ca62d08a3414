"""Collection: Gherkin tags become Allure labels and JUnit properties; `--kt-tags` selects scenarios."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ktbench.runner import allure_bridge
from ktbench.runner.state import CONFIGS, TAGS_ATTR, run_state
from ktbench.runner.tags import split_tags


@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag: str, function: Callable[..., Any]) -> Any:
    tags = function.__dict__.setdefault(TAGS_ATTR, [])
    if tag not in tags:
        tags.append(tag)
    prefix, sep, value = tag.partition(":")
    if sep and value:
        allure_bridge.mark_tag(function, tag)
        return True
    if CONFIGS:
        CONFIGS[-1].addinivalue_line("markers", f"{tag}: Gherkin tag")
    getattr(pytest.mark, tag)(function)
    return True


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = run_state(config)
    if not state.active:
        return
    if state.tag_expression is not None:
        keep, drop = [], []
        for item in items:
            tags = getattr(getattr(item, "obj", None), TAGS_ATTR, ())
            (keep if state.tag_expression.matches(tags) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    for item in items:
        reqs, roles = split_tags(getattr(getattr(item, "obj", None), TAGS_ATTR, ()))
        item.user_properties.extend(("requirement", r) for r in reqs)
        item.user_properties.extend(("role", r) for r in roles)
