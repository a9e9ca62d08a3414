"""The KT1.3 target settings: what a KT1 server target declares beyond its URL and credentials.

Flat keys of a `[targets.NAME]` table whose kind is kt1-server.  Scenarios that can only observe a rule with
short timers or a reachable webhook receiver skip when the target does not declare them, and their skip
reason names the key (`[targets.NAME] claim_timeout_seconds`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ktbench.core.errors import TargetConfigError
from ktbench.targets.reader import check_url


class Kt1Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str | None = None                     # the KT1 domain the roles belong to (default: the data file's)
    public_base: str | None = None                # root URL the server mints links with (default: url)
    claim_timeout_seconds: float | None = Field(None, gt=0)
    max_claim_expiries: int | None = Field(None, gt=0)   # default: 5, as KT1.3 documents
    authorization_code_seconds: float | None = Field(None, gt=0)
    access_token_seconds: float | None = Field(None, gt=0)
    webhook_receiver_url: str | None = None       # where the bench asks what the server notified
    webhook_role: str | None = None               # the role whose application's webhook points there

    @field_validator("public_base", "webhook_receiver_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_url(value, "value")
        except TargetConfigError as exc:
            raise ValueError(str(exc).removeprefix("value: ")) from None
