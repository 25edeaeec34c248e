"""DHIS-2 Tracker for Palabre: find, register and flag tracked entities from any flow.

Actions `dhis2.find`, `dhis2.register` and `dhis2.flag_duplicate`; the `settings.dhis2`
section of a flow (checked by `palabre check`); a worker that completes registrations
queued while DHIS-2 was down; and `palabre dhis2 ping`. Needs only httpx (a core
dependency). Configuration: see `palabre_dhis2.config`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from palabre.actions import Action
from palabre.config import Settings
from palabre.errors import Problem
from palabre.flow.model import Flow
from palabre.hookspecs import hookimpl
from palabre.transports import Host
from palabre_dhis2 import config, find, flag_duplicate, register
from palabre_dhis2.cli import add_commands
from palabre_dhis2.program import SECTION
from palabre_dhis2.settings_check import check_dhis2_settings
from palabre_dhis2.worker import retry_registrations

__all__ = [
    "check_flow",
    "check_settings",
    "register_actions",
    "register_commands",
    "register_settings",
    "register_workers",
]


@hookimpl
def register_actions() -> list[Action]:
    return [find.ACTION, register.ACTION, flag_duplicate.ACTION]


@hookimpl
def register_settings() -> list[str]:
    return [SECTION]


@hookimpl
def check_flow(flow: Flow) -> list[Problem]:
    return check_dhis2_settings(flow)


@hookimpl
def check_settings(settings: Settings) -> list[str]:
    return config.problems(settings)


@hookimpl
def register_workers() -> list[Callable[[Host], Awaitable[None]]]:
    return [retry_registrations]


@hookimpl
def register_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_commands(commands)
