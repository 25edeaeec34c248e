"""Query parameters of `GET /api/tracker/trackedEntities`, which changed across versions.

- 2.41 renamed `orgUnit` (semicolon-separated) and `ouMode` to `orgUnits` (comma-separated)
  and `orgUnitMode`; 2.42 removed the old names. DHIS2_VERSION picks the pair to send.
- From 2.41, `:`, `,` and `/` inside a filter value are escaped with `/`.
- Percent-encoding (a `+` sent as `%2B`) is left to httpx's `params`.
"""

from __future__ import annotations

import re

from palabre.errors import ConfigError

Version = tuple[int, int]
DEFAULT_VERSION: Version = (2, 41)
RENAMED_IN: Version = (2, 41)
OLDEST: Version = (2, 38)

# Modes that take a list of org units; the others (ACCESSIBLE, CAPTURE, ALL) take none.
MODES_WITH_UNITS = ("SELECTED", "CHILDREN", "DESCENDANTS")
MODES = (*MODES_WITH_UNITS, "ACCESSIBLE", "CAPTURE", "ALL")
DEFAULT_MODE = "DESCENDANTS"

_VERSION = re.compile(r"^(?:2\.)?(\d{2})(?:\.\d+)*(?:-\w+)?$")


def parse_version(raw: str | None) -> Version:
    """`2.40`, `2.41.3`, `41` or `2.42-SNAPSHOT` → (2, minor); empty → the default 2.41."""
    if not raw:
        return DEFAULT_VERSION
    match = _VERSION.match(raw.strip())
    if not match:
        raise ConfigError(f"DHIS2_VERSION={raw!r} is not a DHIS-2 version such as 2.40 or 2.41")
    version = (2, int(match.group(1)))
    if version < OLDEST:
        raise ConfigError(f"DHIS2_VERSION={raw}: the tracker API needs DHIS-2 2.38 or later")
    return version


def escape_filter_value(value: str, version: Version) -> str:
    """Escape `/`, `:` and `,` with `/`, as 2.41+ expects inside a filter value."""
    if version < RENAMED_IN:
        return value
    return value.replace("/", "//").replace(":", "/:").replace(",", "/,")


def find_params(
    *, version: Version, attribute: str, value: str, program: str, org_unit: str, mode: str
) -> list[tuple[str, str]]:
    """The query for tracked entities in `program` whose `attribute` equals `value`."""
    params = [
        ("filter", f"{attribute}:EQ:{escape_filter_value(value, version)}"),
        ("program", program),
        ("fields", "trackedEntity"),
    ]
    renamed = version >= RENAMED_IN
    if mode in MODES_WITH_UNITS:
        params.append(("orgUnits" if renamed else "orgUnit", org_unit))
    params.append(("orgUnitMode" if renamed else "ouMode", mode))
    return params
