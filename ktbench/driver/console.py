"""Speaking to the person at the console from inside a pytest run (interactive driver mode).

pytest captures stdout and stderr at the file-descriptor level, so a prompt written while a scenario runs
would only appear in the report after the fact.  `say_for(config)` suspends the capture for the moment of
writing, as `capsys.disabled()` does, and flushes, so a person (or a script reading the bench's output) sees
the instruction while the bench is waiting for the traffic.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def say_for(config: Any) -> Callable[[str], None]:
    capture = config.pluginmanager.getplugin("capturemanager") if config is not None else None

    def say(text: str) -> None:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                sys.stdout.write(text)
                sys.stdout.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    return say
