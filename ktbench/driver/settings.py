"""Target settings every application-under-test kind shares: which driver, and where the bench's server listens.

A generation's application kinds (kt1-portal, kt2-module, ...) subclass `AppTargetSettings` to add their
own keys (the credentials the bench hands the application, its launch URL, ...).  The keys are flat in the
target's table of a targets file:

    [targets.acme-portal]
    kind = "kt2-portal"
    url = "https://portal.acme.test"         # the application's own base URL
    driver = "http"                          # or "command", or "interactive"
    trigger_url = "https://portal.acme.test/ktbench/trigger"
    server_port = 18443                      # the bench's reference server, which the application talks to
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DriverKind = Literal["http", "command", "interactive"]


class AppTargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: DriverKind = "interactive"
    trigger_url: str | None = None           # driver = "http": where actions are POSTed
    command: tuple[str, ...] | None = None   # driver = "command": argv; the action comes on stdin
    action_timeout_seconds: float = Field(30.0, gt=0, le=3600)    # how long delivering one action may take
    traffic_timeout_seconds: float = Field(20.0, gt=0, le=3600)   # how long a scenario waits for the traffic
    server_port: int = Field(0, ge=0, le=65535)  # the bench's server for the application; 0: any free port
    server_tls: bool = False                  # serve the bench's server over https (a generated test CA)

    @model_validator(mode="after")
    def _driver_has_what_it_needs(self) -> AppTargetSettings:
        if self.driver == "http" and not self.trigger_url:
            raise ValueError("driver = \"http\" needs trigger_url (where the bench POSTs its actions)")
        if self.driver == "http" and self.trigger_url and not self.trigger_url.startswith(("http://", "https://")):
            raise ValueError("trigger_url must be an http:// or https:// URL")
        if self.driver == "command" and not self.command:
            raise ValueError("driver = \"command\" needs command (a list: the program and its arguments)")
        return self
