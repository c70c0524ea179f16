"""The base every action parameter model derives from: closed (no unknown keys) and immutable.

The family modules (`kubernetes`, `acr`, `notify`) define one model per action on this base;
`remediation.actions.registry` ties each model to its action name. Playbook validation relies on
`extra="forbid"` to reject misspelt parameters.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ActionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
