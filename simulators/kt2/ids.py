"""Random UUID v4 text, minted often (request ids, trace ids, resource and AuditEvent ids).

Every request mints three; `str(uuid.uuid4())` reads the OS random source and builds a UUID object each time,
which showed in the profile (the getrandom call alone took ~14 us on the test machine).  These ids must be
unique, not unguessable (nothing is protected by them; authorization codes, sessions and the like use
`secrets`), so they come from the process's Mersenne Twister, seeded from the OS at start.
"""

from __future__ import annotations

import random

_random = random.Random()


def new_uuid() -> str:
    h = f"{_random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
