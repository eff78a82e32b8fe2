"""A recipe's couplings: the flags a case expects beside its own (``recipe.threshold.couplings``).

An entry is a flag's name, or a flag gated on a switch: ``{flag: waiting_auto_activation,
when: S53}`` is expected only while S53 is on in the configuration under test (which
activation wait an undervoltage starts depends on S53/S54). The plan resolves them
(``harness/plan/couplings.py``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class Coupling(BaseModel):
    """A flag expected alongside only while a switch is on."""

    model_config = ConfigDict(extra="forbid")

    flag: str
    when: str = Field(pattern=r"^S[1-9][0-9]?$")


#: The union's tags are written ``<...>`` so an error's key leaves them out
#: (``bmsspec.validation``): ``recipe.threshold.couplings.2.when``.
CouplingEntry = Annotated[
    Annotated[str, Tag("<name>")] | Annotated[Coupling, Tag("<gated>")],
    Discriminator(lambda v: "<name>" if isinstance(v, str) else "<gated>"),
]
