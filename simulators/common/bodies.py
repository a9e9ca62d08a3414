"""Reading a request body with a size limit, the same way in every simulator.

A declared Content-Length above the limit is refused before reading; a body that streams past it (no or a
false Content-Length) is refused as soon as it does.  `too_large()` builds each server's own refusal (an
OperationOutcome 413, an OAuth error, an admin API error).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request


async def read_limited(request: Request, limit: int, too_large: Callable[[], Exception]) -> bytes:
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)
