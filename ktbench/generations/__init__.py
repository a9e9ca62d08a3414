"""The built-in generations: implementations of ktbench.core.generation for KT1.3 (and, as they land, KT2).

Only the composition root (ktbench.cli) imports this package; the engine itself never does.  Each
generation lives in its own subpackage and may import its simulators: this is where the bench's parts
are put together.
"""

from __future__ import annotations

# name -> import path ("module:attribute"), the form a pytest subprocess receives with --kt-generation
BUILTIN: dict[str, str] = {
    "kt1": "ktbench.generations.kt1:GENERATION",
    "kt2": "ktbench.generations.kt2:GENERATION",
}
