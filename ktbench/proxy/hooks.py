"""The one custom mitmproxy event of the bench: a flow's validation verdict is ready.

Addons talk to each other the way mitmproxy's own addons do - through events on
the addon chain - instead of holding references to each other.  The validating
addon triggers `ktbench_flow_validated` on the event loop once the worker has
answered; the findings writer and the summary subscribe simply by defining a
method of that name.
"""

from __future__ import annotations

from dataclasses import dataclass

from mitmproxy import hooks

from ktbench.proxy.model import FlowVerdict


@dataclass
class FlowValidatedHook(hooks.Hook):
    """Validation of one FHIR flow finished (validated, skipped, crashed or dropped)."""

    name = "ktbench_flow_validated"
    verdict: FlowVerdict
