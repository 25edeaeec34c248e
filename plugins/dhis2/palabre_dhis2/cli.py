"""`palabre dhis2 ping`: check the DHIS-2 URL, the credentials and the version.

Prints `DHIS-2 <version> at <url>: signed in as <user>` and exits 0. A refused sign-in,
an unreachable server or a DHIS2_VERSION on the wrong side of the 2.41 renames prints
one line and exits 1; a missing DHIS2_URL exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from typing import Any

from palabre.config import Settings
from palabre.errors import ConfigError
from palabre_dhis2.client import open_client
from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.errors import Dhis2Error, Dhis2Rejected
from palabre_dhis2.params import RENAMED_IN, parse_version


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dhis2 = commands.add_parser("dhis2", help="DHIS-2 tracker tools")
    steps = dhis2.add_subparsers(title="steps")
    ping = steps.add_parser("ping", help="check the DHIS-2 URL, credentials and version")
    ping.set_defaults(run=run_ping)


def run_ping(args: argparse.Namespace) -> int:
    config = Dhis2Config.from_settings(Settings.from_env())
    if not config.configured:
        raise ConfigError("DHIS2_URL is not set: give the DHIS-2 base URL in the environment")
    try:
        info, me = asyncio.run(_ask(dataclasses.replace(config, retry_delays=())))
    except Dhis2Rejected as exc:
        print(f"palabre: {exc}; credentials from {config.credentials_hint()}", file=sys.stderr)
        return 1
    except Dhis2Error as exc:
        print(f"palabre: {exc}", file=sys.stderr)
        return 1
    version = str(info.get("version", "unknown"))
    print(f"DHIS-2 {version} at {config.url}: signed in as {_username(me)}")
    return _check_version(version, config)


async def _ask(config: Dhis2Config) -> tuple[dict[str, Any], dict[str, Any]]:
    async with open_client(config) as client:
        info = await client.get("/api/system/info")
        me = await client.get("/api/me", [("fields", "id,username,userCredentials[username]")])
    return (info if isinstance(info, dict) else {}), (me if isinstance(me, dict) else {})


def _username(me: dict[str, Any]) -> str:
    credentials = me.get("userCredentials") or {}
    return str(me.get("username") or credentials.get("username") or me.get("id") or "unknown")


def _check_version(reported: str, config: Dhis2Config) -> int:
    try:
        server = parse_version(reported)
    except ConfigError:
        return 0
    if (server >= RENAMED_IN) == (config.version >= RENAMED_IN):
        return 0
    print(
        f"palabre: DHIS2_VERSION is {'.'.join(map(str, config.version))} but the server runs "
        f"{reported}: set DHIS2_VERSION={server[0]}.{server[1]} (2.41 renamed the org unit "
        "parameters of tracked entity searches)",
        file=sys.stderr,
    )
    return 1
