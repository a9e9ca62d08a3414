"""A command hook that hands each action to a running application's trigger endpoint.

What a vendor whose application already has a trigger (or a test API) would write as a wrapper: read the
action from stdin, POST it, print the reply.  The bench's own tests use it to drive the simulated applications
through the command-hook form of the driver contract:

    python -m simulators.common.driver_hook http://127.0.0.1:PORT/ktbench/trigger < action.json
"""

from __future__ import annotations

import json
import sys

import httpx


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].startswith(("http://", "https://")):
        print("usage: python -m simulators.common.driver_hook TRIGGER_URL  (the action as JSON on stdin)",
              file=sys.stderr)
        return 2
    try:
        action = json.loads(sys.stdin.read())
    except ValueError as exc:
        print(f"driver_hook: the action on stdin is not JSON ({exc})", file=sys.stderr)
        return 2
    try:
        answer = httpx.post(args[0], json=action, timeout=60)
    except httpx.HTTPError as exc:
        print(f"driver_hook: {args[0]} could not be reached ({type(exc).__name__})", file=sys.stderr)
        return 1
    if answer.status_code != 200:
        print(f"driver_hook: {args[0]} answered HTTP {answer.status_code}", file=sys.stderr)
        return 1
    print(answer.text.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
