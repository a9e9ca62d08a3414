"""Simulated KT1.3 counter-roles that act as *clients* of a Koppeltaal server.

A conformance suite for a server needs someone to talk to it: these actors
play the portal and the eHealth module the way real connectors do (message
shapes follow the public Python connector), over an HTTP client handed in by
the caller - normally the bench's recording client, so every exchange an actor
makes becomes an event in the run's report.
"""

from __future__ import annotations

from simulators.kt1.actors.kt1_application import (
    Answer,
    Kt1Application,
    SendResult,
    TokenSet,
)
from simulators.kt1.actors.kt1_messages import DeliveredMessage, HeaderSummary
from simulators.kt1.actors.kt1_module import Kt1Module
from simulators.kt1.actors.kt1_portal import Kt1Portal
from simulators.kt1.actors.kt1_resources import LocalResource
from simulators.kt1.actors.people import People

__all__ = [
    "Answer",
    "DeliveredMessage",
    "HeaderSummary",
    "Kt1Application",
    "Kt1Module",
    "Kt1Portal",
    "LocalResource",
    "People",
    "SendResult",
    "TokenSet",
]
