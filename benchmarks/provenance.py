"""Which code a benchmark measured: the commit, and a fingerprint of the working tree.

Others may edit the engine while a benchmark runs, and each server imports the code when
it starts, so every comparison records the state it started with. Git is only read
(`--no-optional-locks`: not even the index's stat cache is refreshed).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("engine", "plugins", "flows", "locales")


def code_state() -> dict[str, object]:
    """The commit, the files changed since (engine, plugins, flows) and a fingerprint of
    their sources as they are on disk."""
    digest = hashlib.sha256()
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    changed = _git("status", "--porcelain", "--", *SOURCES).splitlines()
    return {
        "commit": _git("rev-parse", "--short", "HEAD").strip(),
        "changed": [line[3:] for line in changed],
        "fingerprint": digest.hexdigest()[:12],
    }


def _git(*args: str) -> str:
    command = ["git", "--no-optional-locks", "-C", str(ROOT), *args]
    found = subprocess.run(command, capture_output=True, text=True, check=False)
    return found.stdout if found.returncode == 0 else ""
