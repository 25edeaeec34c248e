"""The `palabre` command: chat, check, serve, worker, messages, start, contacts, db, schema,
plugins, i18n.

Errors the user can fix (a flow mistake, a missing secret, a store that is down) are
printed as one clear message and exit status 1 or 2; never as a traceback. Output piped
into a reader that stops early (`palabre chat ... | head`) ends quietly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pluggy

from palabre.api.commands import add_api_commands
from palabre.broadcasts.commands import add_broadcast_command
from palabre.config import Settings
from palabre.db.commands import add_db_commands
from palabre.doctor import add_doctor_command
from palabre.errors import FlowError, PalabreError, Problem
from palabre.logs import configure_logging
from palabre.outbox.commands import add_outbox_commands
from palabre.plugins import make_plugin_manager
from palabre.privacy_commands import add_contacts_commands
from palabre.starts import add_start_command

LOCALES = ["fr", "ar", "en"]


def main(argv: Sequence[str] | None = None, plugins: pluggy.PluginManager | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 problems found, 2 usage or setup error)."""
    try:
        parser = _parser(plugins or make_plugin_manager())
    except PalabreError as exc:
        print(f"palabre: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except FlowError as exc:
        _print_problems(exc.problems)
        return 1
    except PalabreError as exc:
        print(f"palabre: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """The reader of our output closed it (`| head`): stop quietly, as the shell expects.

    The recipe from the `signal` module's "Note on SIGPIPE": point stdout at devnull, so
    that flushing it at exit does not raise again, and report 128 + SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def _parser(plugins: pluggy.PluginManager) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="palabre", description="YAML-driven chatbot engine.")
    commands = parser.add_subparsers(title="commands")

    chat = commands.add_parser("chat", help="talk to a flow in the terminal (or through stdin)")
    chat.add_argument("flows", nargs="+", help="flow files or folders")
    chat.add_argument("--lang", choices=LOCALES, help="the contact's language")
    chat.add_argument("--contact", default="terminal", help="the contact id to chat as")
    chat.add_argument("--resume", action="store_true", help="continue the stored conversation")
    chat.set_defaults(run=_chat)

    check = commands.add_parser("check", help="validate flows and their translations")
    check.add_argument("paths", nargs="+", help="flow files or folders")
    check.set_defaults(run=_check)

    serve = commands.add_parser("serve", help="run the web server (simulator and webhooks)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    serve.add_argument(
        "--insecure-dev",
        action="store_true",
        help="accept unsigned webhooks and a throwaway secret (never in production)",
    )
    serve.add_argument(
        "--no-worker",
        dest="workers",
        action="store_false",
        help="serve requests only: `palabre worker` processes send and start events",
    )
    serve.set_defaults(run=_serve)

    schema = commands.add_parser("schema", help="print the JSON Schema of the flow format")
    schema.set_defaults(run=_schema)

    listing = commands.add_parser("plugins", help="list the loaded plugins and actions")
    listing.set_defaults(run=_plugins)

    _i18n_parser(commands)
    add_outbox_commands(commands)
    add_start_command(commands)
    add_broadcast_command(commands)
    add_api_commands(commands)
    add_doctor_command(commands)
    add_contacts_commands(commands)
    add_db_commands(commands)
    plugins.hook.register_commands(commands=commands)
    return parser


def _i18n_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    i18n = commands.add_parser("i18n", help="manage translations (gettext PO files)")
    i18n.add_argument("--locales", type=Path, default=Path("locales"), help="the locales folder")
    i18n.add_argument("--flows", type=Path, default=Path("flows"), help="the flows folder")
    sub = i18n.add_subparsers(title="steps")
    for name, helptext in (
        ("extract", "collect texts from flows and the engine into messages.pot"),
        ("update", "merge messages.pot into each language's messages.po"),
        ("compile", "write messages.mo files"),
        ("stats", "percent translated per language"),
    ):
        sub.add_parser(name, help=helptext).set_defaults(run=_i18n, step=name)


def _chat(args: argparse.Namespace) -> int:
    from palabre.bootstrap import build_engine
    from palabre.chat import chat
    from palabre.serve import flow_secret_names

    settings = Settings.from_env(dev=True)
    configure_logging(settings.log_level or "WARNING")
    for notice in settings.notices():
        print(f"palabre: {notice}", file=sys.stderr)
    for name in sorted(flow_secret_names(args.flows)):
        if not settings.has_secret(name):
            print(
                f"palabre: {name} is not set; using a development secret kept in "
                f"{settings.data_dir}/ (never use it in production)",
                file=sys.stderr,
            )
    engine = build_engine(args.flows, settings)

    async def run() -> None:
        try:
            await chat(engine, contact=args.contact, lang=args.lang, resume=args.resume)
        finally:
            await engine.aclose()

    asyncio.run(run())
    return 0


def _serve(args: argparse.Namespace) -> int:
    from palabre.serve import run

    return run(args)


def _check(args: argparse.Namespace) -> int:
    from palabre.bootstrap import Toolkit, flow_files, load_flows, locales_for

    files = flow_files(args.paths)
    if not files:
        print(f"palabre: no flow files found in {' '.join(args.paths)}", file=sys.stderr)
        return 2
    from palabre.i18n.tooling import check_catalogs

    locales = locales_for(files, Settings.from_env())
    _, problems = load_flows(files, Toolkit.create(locales))
    _print_problems(problems)
    catalog_problems = check_catalogs(locales, LOCALES) if locales else []
    for line in catalog_problems:
        print(line)
    # a catalog problem breaks a language, so it counts as an error
    errors = sum(p.severity != "warning" for p in problems) + len(catalog_problems)
    warnings = sum(p.severity == "warning" for p in problems)
    print(
        f"{len(files)} flow file(s) checked: {errors} error(s), {warnings} warning(s)",
        file=sys.stderr,
    )
    return 1 if errors else 0


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        prefix = "warning: " if problem.severity == "warning" else ""
        print(f"{prefix}{problem}")


def _schema(args: argparse.Namespace) -> int:
    from palabre.flow.schema import flow_schema

    print(json.dumps(flow_schema(), indent=2, ensure_ascii=False))
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from palabre.plugins import collect_actions, describe, make_plugin_manager

    manager = make_plugin_manager()
    for name, origin in describe(manager):
        print(f"{name:<12} {origin}")
    for action in collect_actions(manager).values():
        print(f"  action {action.name}: {action.description}")
    return 0


def _plugin_sources() -> list[Path]:
    """The folders of the loaded plugin packages, whose user-facing texts are marked N_()."""
    folders = set()
    for _, plugin in make_plugin_manager().list_name_plugin():
        paths = getattr(plugin, "__path__", None)  # a plugin that is a package
        folders |= {Path(p) for p in paths or ()}
    return sorted(folders)


def _i18n(args: argparse.Namespace) -> int:
    from palabre.bootstrap import flow_files
    from palabre.i18n import tooling

    template = args.locales / "messages.pot"
    if args.step == "extract":
        sources = [Path(__file__).parent, *_plugin_sources()]
        catalog = tooling.extract(flow_files([args.flows]), sources, template)
        print(f"{len(catalog)} texts written to {template}")
    elif args.step == "update":
        for path in tooling.update(template, args.locales, LOCALES):
            print(f"updated {path}")
    elif args.step == "compile":
        for path in tooling.compile(args.locales, LOCALES):
            print(f"compiled {path}")
    else:
        for row in tooling.stats(args.locales, LOCALES):
            print(
                f"{row.locale}: {row.percent:5.1f}% translated "
                f"({row.translated}/{row.total}, {row.fuzzy} fuzzy)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
