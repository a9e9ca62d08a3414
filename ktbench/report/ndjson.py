"""The raw event log: one JSON object per line, every event of the run (opt-in: `ktbench run --events FILE`).

Useful to audit exactly what was sent and received (already redacted), to
debug a scenario without re-running it, and as the traffic record of a
certification run.  Under pytest-xdist each worker writes its own file
(`events.gw0.ndjson`, ...) so lines never interleave.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from ktbench.core.events import Event, RunFinished, to_dict


def worker_path(path: str | os.PathLike[str], worker_id: str | None) -> Path:
    path = Path(path)
    if not worker_id:
        return path
    return path.with_name(f"{path.stem}.{worker_id}{path.suffix}")


class NdjsonEventWriter:
    """Subscriber: appends each event as one JSON line; flushes per event, closes on RunFinished/close()."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = self.path.open("w", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(to_dict(event), ensure_ascii=False) + "\n")
        self._file.flush()
        if isinstance(event, RunFinished):
            self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
