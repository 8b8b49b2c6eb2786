"""The body of ``POST /_sim/sandboxes``, as a pydantic model.

Apart from :mod:`simulator.sandboxes` so that pydantic, and this model's schema, are built
when a sandbox is first created, not when the app starts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

__all__ = ["OptionValue", "SandboxSpec"]

OptionValue = StrictBool | StrictInt | StrictFloat | StrictStr


class SandboxSpec(BaseModel):
    """The body of ``POST /_sim/sandboxes``: every field optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, max_length=100)
    seed: StrictInt | None = None
    clock: Literal["manual", "system"] | None = None
    start: AwareDatetime | None = None
    options: dict[str, dict[str, OptionValue]] = Field(default_factory=dict)
    # Checked against the scenario schema (which names the line and field), not here.
    scenario: dict[str, Any] | None = None
