"""Speed of the DSTU1 XML codec (ktbench.fhir.dstu1.xmlcodec): parse_xml and to_xml calls per CPU second.

Why: the validator converts every KT1 XML message with parse_xml before validating the JSON model
(benchmarks/validator.py, goal kt1_bundles_per_s_xml >= 1,000 per core), and the KT1 reference server
calls parse_xml / to_xml on every XML request and reply. This script measures the codec alone.

Documents (real KT1 data from ../shared/fixtures/kt1 when that folder exists):
  message  one KT1 message feed: koppeltaal-schema__CreateOrUpdateCarePlan.xml (MessageHeader, CarePlan,
           Patient, Practitioner, RelatedPerson ...); without the shared data: the CreateOrUpdateCarePlan
           bundle of benchmarks/validator.py, written as XML
  feed     a mailbox-sized feed: the entries of all four koppeltaal-schema KT1 message examples in one Atom
           feed (without the shared data: the message bundle's entries four times over)

Rates are per CPU second of this process (time.process_time: the per-core throughput, robust against
other load on the machine); the *_wall keys give the wall-clock rate of the same run. Each document is
first checked to survive XML -> JSON -> XML -> JSON unchanged, so a broken codec cannot look fast.

Usage: python benchmarks/xmlcodec.py [--seconds S] [--module DOTTED.NAME]  -> JSON on stdout.
--module names any module with parse_xml/to_xml (e.g. a copy of an older codec) for before/after runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
FIXTURES = REPO / ".." / "shared" / "fixtures" / "kt1"
MESSAGE_FIXTURES = (
    "koppeltaal-schema__CreateOrUpdateCarePlan.xml",
    "koppeltaal-schema__CreateOrUpdateCarePlanActivityResult.xml",
    "koppeltaal-schema__CreateOrUpdateUserMessage.xml",
    "koppeltaal-schema__UpdateCarePlanActivityStatus.xml",
)


def documents(codec: Any) -> tuple[str, dict[str, bytes]]:
    """(source description, {"message": xml, "feed": xml})."""
    paths = [FIXTURES / name for name in MESSAGE_FIXTURES]
    if all(path.is_file() for path in paths):
        source = "shared fixtures (../shared/fixtures/kt1)"
        messages = [codec.parse_xml(path.read_bytes()) for path in paths]
        message = paths[0].read_bytes()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from validator import kt1_message

        source = "built-in sample (benchmarks/validator.py kt1_message; shared fixtures absent)"
        messages = [kt1_message()] * 4
        message = codec.to_xml(messages[0])
    feed = dict(messages[0])
    feed["entry"] = [entry for bundle in messages for entry in bundle["entry"]]
    return source, {"message": message, "feed": codec.to_xml(feed)}


def rate(fn: Callable[[], Any], seconds: float) -> tuple[float, float, int]:
    """(calls per CPU second, calls per wall second, calls) of fn() over about ``seconds`` of wall time."""
    for _ in range(10):
        fn()
    calls = 0
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    deadline = wall_start + seconds
    while True:
        for _ in range(20):
            fn()
        calls += 20
        now = time.perf_counter()
        if now >= deadline:
            cpu = max(time.process_time() - cpu_start, 1e-9)
            return calls / cpu, calls / (now - wall_start), calls


def measure(codec: Any, name: str, xml: bytes, seconds: float) -> dict:
    model = codec.parse_xml(xml)
    written = codec.to_xml(model)
    if codec.parse_xml(written) != model:
        raise SystemExit(f"{name}: XML -> JSON -> XML -> JSON changed the document; not measuring a broken codec")
    parse_cpu, parse_wall, parse_calls = rate(lambda: codec.parse_xml(xml), seconds)
    write_cpu, write_wall, write_calls = rate(lambda: codec.to_xml(model), seconds)
    return {
        f"{name}_parse_per_s": round(parse_cpu),
        f"{name}_write_per_s": round(write_cpu),
        f"{name}_parse_per_s_wall": round(parse_wall),
        f"{name}_write_per_s_wall": round(write_wall),
        f"{name}_bytes": len(xml),
        f"{name}_entries": len(model.get("entry", [])),
        f"{name}_runs": parse_calls + write_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each throughput measurement")
    parser.add_argument("--module", default="ktbench.fhir.dstu1.xmlcodec", help="module providing parse_xml/to_xml")
    args = parser.parse_args()
    codec = importlib.import_module(args.module)
    source, docs = documents(codec)
    results: dict = {
        "benchmark": "xmlcodec",
        "module": args.module,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "documents": source,
    }
    for name, xml in docs.items():
        results.update(measure(codec, name, xml, args.seconds))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
