"""Reading a py-spy profile (`py-spy record --format raw`): where the samples went.

Each line of the file is a stack, outermost frame first, `function (file:line)` frames
joined by `;`, then a space and how many samples saw it; with `--threads`, the first
frame names the thread, `thread (0x7f...): MainThread`. Four views:
- by thread: the main (event loop) thread, and the pools of worker threads by name;
- by package: each sample goes to the innermost frame that is not the standard library
  (time spent in asyncio or socket calls on behalf of redis is redis's), or to the event
  loop when its `_run_once` comes first (polling, scheduling callbacks);
- self time: the innermost function;
- inclusive time of Palabre's own functions (engine and plugins), each counted once per
  stack however deep it recurses, leaving out the entry points every sample has (the
  CLI, `palabre serve`).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OWN = ("palabre", "palabre_twilio", "palabre_meta_cloud", "palabre_qr", "palabre_dhis2")
STDLIB = set(sys.stdlib_module_names)
LOOP = "BaseEventLoop._run_once"  # a sample reaching it first is the event loop's own work

ENTRY_FILES = ("palabre/cli.py", "palabre/serve.py")
ROOT = Path(__file__).resolve().parent.parent
PROJECT_ROOTS = [ROOT / "engine", *sorted((ROOT / "plugins").glob("*/"))]
LIBRARY = re.compile(r"python3\.\d+")  # .../lib/python3.11/asyncio/events.py
THREAD = re.compile(r"thread \((?:0x)?[0-9a-fA-F]+\)(?::\s*(?P<name>.*))?$")
Stack = tuple[list[tuple[str, str]], int]  # [(function, file)], samples; thread first


def read_stacks(path: Path) -> list[Stack]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit():
            continue
        parsed = [_frame(text) for text in frames.split(";")]
        stacks.append(([frame for frame in parsed if frame], int(count)))
    return stacks


def _frame(text: str) -> tuple[str, str] | None:
    thread = THREAD.match(text.strip())
    if thread is not None:
        return _pool(thread["name"] or "?"), "<thread>"
    match = FRAME.match(text.strip())
    if match is None:
        return None  # a process header
    return match["function"], match["file"]


def _pool(name: str) -> str:
    """`Thread-12 (_connection_worker_thread)` and `asyncio_3` as the pool they belong to."""
    if "(" in name:
        return name[name.index("(") + 1 : name.rindex(")")]
    return re.sub(r"[_-]?\d+$", "", name)


def by_thread(stacks: list[Stack]) -> Counter[str]:
    found: Counter[str] = Counter()
    for frames, count in stacks:
        thread = frames[0][0] if frames and frames[0][1] == "<thread>" else "(not recorded)"
        found[thread] += count
    return found


def package(file: str) -> str:
    """The top-level package or module of a frame's file. py-spy writes it relative to
    its `sys.path` entry (`sqlalchemy/engine/base.py`); an absolute path is cut after
    site-packages, the Python library folder, or one of the project's source roots."""
    path = Path(file)
    if not path.is_absolute():
        return _module(path.parts)
    for root in PROJECT_ROOTS:
        if path.is_relative_to(root):
            return _module(path.relative_to(root).parts)
    parts = path.parts
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] in ("site-packages", "dist-packages") or LIBRARY.fullmatch(parts[index]):
            return _module(parts[index + 1 :])
    return _module(parts[-1:])


def _standard(name: str) -> bool:
    return name in STDLIB or name.startswith("<frozen ")  # <frozen importlib._bootstrap>


def _module(parts: tuple[str, ...]) -> str:
    if not parts:
        return "?"
    first = parts[0]
    return first[:-3] if first.endswith(".py") else first


def by_package(stacks: list[Stack]) -> Counter[str]:
    found: Counter[str] = Counter()
    for frames, count in stacks:
        found[owner(_code(frames))] += count
    return found


def _code(frames: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [frame for frame in frames if frame[1] != "<thread>"]


def owner(frames: list[tuple[str, str]]) -> str:
    """Who a sample's time is spent for (see the module docstring)."""
    for function, file in reversed(frames):
        if function == LOOP:
            return "asyncio event loop"
        if not _standard(package(file)):
            return package(file)
    return f"{package(frames[-1][1])} (stdlib)" if frames else "?"


def self_time(stacks: list[Stack]) -> Counter[str]:
    found: Counter[str] = Counter()
    for frames, count in stacks:
        code = _code(frames)
        if code:
            function, file = code[-1]
            found[f"{function} ({file})"] += count
    return found


def own_inclusive(stacks: list[Stack]) -> Counter[str]:
    found: Counter[str] = Counter()
    for frames, count in stacks:
        names = {
            f"{function} ({file})"
            for function, file in frames
            if package(file) in OWN and not file.endswith(ENTRY_FILES)
        }
        for name in names:
            found[name] += count
    return found


def summary(stacks: list[Stack], us_per_request: float, top: int = 12) -> str:
    """The three views as text: share of samples, and µs per request at that share."""
    total = sum(count for _, count in stacks) or 1
    lines = [f"{total} samples; µs/request = share x {us_per_request:.0f}"]
    for title, counter in (
        ("by thread", by_thread(stacks)),
        ("by package (innermost non-stdlib frame)", by_package(stacks)),
        ("self time (innermost function)", self_time(stacks)),
        ("inclusive, Palabre's own functions", own_inclusive(stacks)),
    ):
        lines.append(f"  {title}:")
        for name, count in counter.most_common(top):
            share = count / total
            lines.append(f"    {share:6.1%} {share * us_per_request:7.0f} us  {name}")
    return "\n".join(lines)
