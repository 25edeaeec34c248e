"""The DHIS-2 tracker calls Palabre makes: find, import, flag a potential duplicate.

- `GET /api/tracker/trackedEntities` answers `{"instances": [...]}` up to 2.40 and
  `{"pager": {...}, "trackedEntities": [...]}` from 2.41; both are read.
- `POST /api/tracker?async=false` answers an import report
  (`status`, `validationReport.errorReports[].errorCode`); with atomicMode=ALL an ERROR
  report comes with HTTP 409 and nothing is saved.
- `POST /api/potentialDuplicates` takes `{original, duplicate}`; 409 means already flagged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from palabre_dhis2.client import Dhis2Client
from palabre_dhis2.errors import Dhis2Rejected
from palabre_dhis2.params import find_params
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.registration import Registration

log = logging.getLogger("palabre.dhis2")

TRACKED_ENTITIES = "/api/tracker/trackedEntities"
TRACKER_IMPORT = "/api/tracker"
POTENTIAL_DUPLICATES = "/api/potentialDuplicates"
IMPORT_PARAMS = (("async", "false"), ("importStrategy", "CREATE"), ("atomicMode", "ALL"))

NON_UNIQUE = "E1064"  # another tracked entity already has this attribute value
ALREADY_EXISTS = {"E1002", "E1080"}  # our tracked entity / enrollment UID is already there


@dataclass(frozen=True)
class ImportReport:
    """The part of an import report Palabre reads: the status and the error codes."""

    status: str
    error_codes: tuple[str, ...]


async def find_ids(client: Dhis2Client, program: ProgramSettings, value: str) -> list[str]:
    """UIDs of the tracked entities in `program` whose attribute equals `value`."""
    params = find_params(
        version=client.config.version,
        attribute=program.attribute,
        value=value,
        program=program.program,
        org_unit=program.org_unit,
        mode=program.org_unit_mode,
    )
    return entity_ids(await client.get(TRACKED_ENTITIES, params))


def entity_ids(body: Any) -> list[str]:
    """The `trackedEntity` UIDs of a 2.41+ (`trackedEntities`) or 2.38-2.40 (`instances`) page."""
    if not isinstance(body, dict):
        return []
    items = body.get("trackedEntities")
    if items is None:
        items = body.get("instances", [])
    return [str(item["trackedEntity"]) for item in items if item.get("trackedEntity")]


def read_import_report(body: Any) -> ImportReport:
    """Status and error codes of an import report, bare or inside a WebMessage `response`."""
    if isinstance(body, dict) and "validationReport" not in body:
        body = body.get("response", body)
    if not isinstance(body, dict):
        return ImportReport("ERROR", ())
    errors = (body.get("validationReport") or {}).get("errorReports") or []
    codes = tuple(str(e.get("errorCode")) for e in errors if isinstance(e, dict))
    return ImportReport(str(body.get("status", "ERROR")), codes)


async def submit(client: Dhis2Client, registration: Registration) -> str:
    """Import the registration: "created", or "exists" when another entity has the code.

    A retry whose first attempt went through is "created" (E1002/E1080 on our own UIDs).
    Any other ERROR report raises Dhis2Rejected naming the error codes.
    """
    status, body = await client.post(
        TRACKER_IMPORT, registration.payload(), IMPORT_PARAMS, readable=(409,)
    )
    report = read_import_report(body)
    fields = {"status": status, "codes": report.error_codes, "id": registration.tracked_entity}
    log.info("DHIS-2 import answered", extra=fields)
    if status < 300 and report.status != "ERROR":
        return "created"
    if NON_UNIQUE in report.error_codes:
        return "exists"
    if report.error_codes and set(report.error_codes) <= ALREADY_EXISTS:
        return "created"
    codes = ", ".join(report.error_codes) or "no error code"
    raise Dhis2Rejected(
        f"DHIS-2 rejected the import of tracked entity {registration.tracked_entity} "
        f"(HTTP {status}: {codes}); see the DHIS-2 tracker error codes",
        status=status,
    )


async def flag_duplicate(client: Dhis2Client, original: str, duplicate: str) -> bool:
    """Flag the pair as a potential duplicate; False when it was already flagged."""
    status, _ = await client.post(
        POTENTIAL_DUPLICATES, {"original": original, "duplicate": duplicate}, readable=(409,)
    )
    log.info("potential duplicate flagged", extra={"original": original, "duplicate": duplicate})
    return status != 409
