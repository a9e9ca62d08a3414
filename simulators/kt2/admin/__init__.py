"""The domain admin application of the KT2 voorziening (the Itzos "beheerapplicatie", seed 001 ch. 3-5).

Accounts and log-in with lock-out, application instances and their statuses, connection requests, the
simulated outbox, a JSON API and a small web page under `/kt2/mgmt`.  See simulators/kt2/README.md, section
"Domain admin", for the endpoints and the choices made where the seed is silent.
"""

from __future__ import annotations

from simulators.kt2.admin.service import DomainAdmin

__all__ = ["DomainAdmin"]
