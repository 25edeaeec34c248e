"""Assemble a ready engine from flow files and settings: plugins, flows, catalogs, stores.

Everything is built from arguments (no globals), so a test, the CLI and the web server
each get an engine of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pluggy

from palabre.config import Settings
from palabre.errors import FlowError, Problem
from palabre.events import publisher
from palabre.flow.check import check_flow
from palabre.flow.loader import SETTINGS_TYPES, parse_flow
from palabre.flow.model import Flow
from palabre.flow.source import read_source
from palabre.flow.suggest import closest
from palabre.i18n.catalogs import Catalogs
from palabre.i18n.templates import Templates
from palabre.metrics import Metrics
from palabre.plugins import collect_actions, collect_filters, make_plugin_manager
from palabre.runtime.engine import Engine
from palabre.runtime.speech import Speech
from palabre.stores.base import SessionStore
from palabre.stores.bundle import Stores

log = logging.getLogger("palabre.flows")
PACKAGED_LOCALES = Path(__file__).parent / "_locales"


@dataclass
class Toolkit:
    """What loading and checking flows needs: plugins, templates and catalogs."""

    plugins: pluggy.PluginManager
    templates: Templates
    catalogs: Catalogs

    @classmethod
    def create(cls, locales: Path | None, plugins: pluggy.PluginManager | None = None) -> Toolkit:
        manager = plugins or make_plugin_manager()
        return cls(manager, Templates(collect_filters(manager)), Catalogs(locales))


def flow_files(paths: Iterable[str | Path]) -> list[Path]:
    """The .yaml/.yml files named, or found (sorted) in the folders named."""
    found: list[Path] = []
    for path in map(Path, paths):
        found += sorted(p for p in path.rglob("*.y*ml")) if path.is_dir() else [path]
    return found


def locales_for(files: list[Path], settings: Settings) -> Path | None:
    """The locales folder: configured, else beside the flows' folder, else the packaged one."""
    if settings.locales_dir:
        return settings.locales_dir
    for file in files:
        for candidate in (file.parent / "locales", file.parent.parent / "locales"):
            if candidate.is_dir():
                return candidate
    return PACKAGED_LOCALES if PACKAGED_LOCALES.is_dir() else None


def _shared_events(flows: dict[str, Flow]) -> list[Problem]:
    """An event starts one flow: two would each interrupt the other's conversation."""
    owner: dict[str, Flow] = {}
    found = []
    for flow in flows.values():
        for event in flow.events:
            first = owner.setdefault(event, flow)
            if first is not flow:
                where = flow.locate("triggers", "event")
                message = f"the event '{event}' already starts the flow '{first.id}' ({first.file})"
                found.append(Problem(flow.file, *where, "triggers.event", message))
    return found


def load_flows(files: list[Path], toolkit: Toolkit) -> tuple[dict[str, Flow], list[Problem]]:
    """Parse and check every file; returns the flows that parsed and every problem."""
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for file in files:
        flow, found = parse_flow(read_source(file))
        problems += found
        if flow is None:
            continue
        if flow.id in flows:
            problems.append(
                Problem(
                    flow.file,
                    *flow.where,
                    "id",
                    f"duplicate flow id '{flow.id}' (also in {flows[flow.id].file})",
                )
            )
            continue
        flows[flow.id] = flow
    problems += _shared_events(flows)
    actions = collect_actions(toolkit.plugins)
    owned = {name for batch in toolkit.plugins.hook.register_settings() for name in batch}
    for flow in flows.values():
        problems += check_flow(
            flow, toolkit.templates, toolkit.catalogs, actions=actions, flow_ids=flows
        )
        problems += _unknown_settings(flow, owned)
        problems += [p for batch in toolkit.plugins.hook.check_flow(flow=flow) for p in batch]
    return flows, sorted(problems)


def _unknown_settings(flow: Flow, owned: set[str]) -> list[Problem]:
    return [
        Problem(
            flow.file,
            *flow.locate("settings", name),
            f"settings.{name}",
            f"unknown setting '{name}'",
            closest(name, owned | set(SETTINGS_TYPES)),
        )
        for name in flow.settings.extra
        if name not in owned
    ]


def build_engine(
    paths: Iterable[str | Path],
    settings: Settings,
    *,
    plugins: pluggy.PluginManager | None = None,
    store: SessionStore | None = None,
    stores: Stores | None = None,
    clock: Callable[[], float] = time.time,
    http: httpx.AsyncClient | None = None,
    metrics: Metrics | None = None,
) -> Engine:
    """An engine for the flows at `paths`; raises FlowError when any flow has an error.

    The session `store` and the durable `stores` come from the plugins' `make_session_store`
    and `make_stores` hooks unless given; `metrics` (the web app's) times each turn.
    """
    files = flow_files(paths)
    toolkit = Toolkit.create(locales_for(files, settings), plugins)
    flows, problems = load_flows(files, toolkit)
    fatal = [p for p in problems if p.severity == "error" and p.topic != "translation"]
    if fatal:
        raise FlowError(fatal)
    if problems:
        log.warning(
            "%d translation or reachability problem(s): run `palabre check` to list them",
            len(problems),
        )
    manager = toolkit.plugins
    chosen = store or manager.hook.make_session_store(settings=settings)
    durable = stores or manager.hook.make_stores(settings=settings, clock=clock)
    speech = Speech(toolkit.catalogs, toolkit.templates)
    return Engine(
        flows,
        chosen,
        speech,
        collect_actions(manager),
        settings,
        stores=durable,
        clock=clock,
        http=http,
        publish=publisher(manager),
        metrics=metrics,
    )
