"""The flow's `settings.dhis2` section: which program, attribute and org unit to use.

settings:
  dhis2:
    program: IpHINAT79UW              # the tracker program to enrol in
    attribute: lZGmxYbs97q            # the unique tracked entity attribute holding the code
    org_unit: DiszpKrYNg8             # where people are registered and searched
    tracked_entity_type: nEenWmSyUEp  # the type of the tracked entities created
    org_unit_mode: DESCENDANTS        # optional: how far to search (default DESCENDANTS)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from palabre.errors import ActionError
from palabre_dhis2.params import DEFAULT_MODE

SECTION = "dhis2"
REQUIRED = ("program", "attribute", "org_unit", "tracked_entity_type")
OPTIONAL = ("org_unit_mode",)


@dataclass(frozen=True)
class ProgramSettings:
    """The DHIS-2 UIDs a flow registers people with."""

    program: str
    attribute: str
    org_unit: str
    tracked_entity_type: str
    org_unit_mode: str = DEFAULT_MODE

    @classmethod
    def from_flow_settings(cls, extra: dict[str, Any]) -> ProgramSettings:
        """Read `settings.dhis2`; `palabre check` has already validated it."""
        section = extra.get(SECTION)
        if not isinstance(section, dict) or any(not section.get(k) for k in REQUIRED):
            raise ActionError(
                "the flow has no complete settings.dhis2 section "
                f"({', '.join(REQUIRED)}): run `palabre check`"
            )
        return cls(
            **{k: str(section[k]) for k in REQUIRED},
            org_unit_mode=str(section.get("org_unit_mode") or DEFAULT_MODE),
        )
