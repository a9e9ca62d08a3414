"""Live-traffic validation: mitmproxy addons that check every FHIR body crossing the wire.

One class per concern, wired together through mitmproxy's addon chain:

* `FhirTrafficFilter` (fhir_filter.py) - which flows are FHIR;
* `ValidatingAddon` (validating.py) - hands bodies to a worker pool, never blocks or alters a flow;
* `FindingsWriter` (findings_writer.py) - findings as redacted JSON Lines;
* `FlowRecorder` (recorder.py) - redacted flow file and/or HAR;
* `Summary` (summary.py) - counts, lost flows, summary.json at shutdown.

Support modules: `pool` and `worker` (validation in niced worker processes fed over pipes),
`model` (the picklable records exchanged with them), `hooks` (the `ktbench_flow_validated`
event).  `runner.run_proxy` composes the addons into a running proxy (`ktbench proxy`).
Submodules are imported on use: importing `ktbench.proxy` stays cheap.
"""

from __future__ import annotations
