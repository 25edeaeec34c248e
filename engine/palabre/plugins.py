"""Make a plugin manager: built-ins and third-party plugins, loaded the same way.

Every plugin, the built-ins included, is declared in the `palabre` entry-point group,
so a `palabre-<name>` package on PyPI plugs in exactly like ours. Set
`PALABRE_DISABLE_PLUGINS=name,other` (in the environment or `.env`, read through
`palabre.config`) to keep some from loading. After loading,
`check_pending()` rejects any hook implementation that has no spec (a typo in a hook
name fails loudly instead of never being called).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from palabre import hookspecs
from palabre.actions import Action
from palabre.config import DISABLE_PLUGINS, Settings
from palabre.errors import PluginError


def make_plugin_manager(
    extra: Iterable[object] = (), *, entry_points: bool = True, disabled: Iterable[str] = ()
) -> pluggy.PluginManager:
    """A plugin manager with the entry-point plugins (unless disabled) and `extra` ones.

    `disabled` adds to the names in PALABRE_DISABLE_PLUGINS.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in set(disabled) | Settings.from_env().disabled_plugins:
        manager.set_blocked(name)
    if entry_points:
        try:
            manager.load_setuptools_entrypoints(hookspecs.PROJECT)
        except Exception as exc:  # a broken third-party plugin must name itself
            raise PluginError(f"a plugin failed to load: {exc!r}") from exc
    for plugin in extra:
        manager.register(plugin)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}: check the hook's name against palabre.hookspecs") from exc
    return manager


def unknown_plugins(names: Iterable[str]) -> list[str]:
    """A line for each name in PALABRE_DISABLE_PLUGINS that no installed plugin has."""
    installed = sorted(point.name for point in entry_points(group=hookspecs.PROJECT))
    return [
        f"{DISABLE_PLUGINS} names '{name}', which is not an installed plugin "
        f"(installed: {', '.join(installed)})"
        for name in sorted(set(names) - set(installed))
    ]


def collect_actions(manager: pluggy.PluginManager) -> dict[str, Action]:
    """Every registered action by name; two plugins claiming one name is an error."""
    actions: dict[str, Action] = {}
    for batch in manager.hook.register_actions():
        for action in batch:
            if action.name in actions:
                raise PluginError(f"two plugins register the action '{action.name}'")
            actions[action.name] = action
    return actions


def collect_filters(manager: pluggy.PluginManager) -> dict[str, Callable[..., Any]]:
    """Every template filter; later-registered plugins run first and so win a clash."""
    filters: dict[str, Callable[..., Any]] = {}
    for batch in reversed(manager.hook.register_template_filters()):
        filters.update(batch)
    return filters


def describe(manager: pluggy.PluginManager) -> list[tuple[str, str]]:
    """(name, where it comes from) for each loaded plugin, for `palabre plugins`."""
    rows = []
    dists = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    for name, plugin in sorted(manager.list_name_plugin(), key=lambda item: str(item[0])):
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        origin = f"{dist.project_name} {dist.version}" if dist else _module_name(plugin)
        rows.append((str(name), origin))
    return rows


def _module_name(plugin: object) -> str:
    return plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
