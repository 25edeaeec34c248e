"""Every error Palabre raises on purpose.

    PalabreError
    ├── FlowError                a flow file is wrong; carries file:line:column problems
    ├── ConfigError              the environment or settings are missing something
    ├── TemplateError            a message template failed to render (names the template)
    ├── ActionError              a plugin action failed; routed to the step's on_error exit
    ├── PluginError              a plugin is broken or has a hook with no spec
    └── StoreError               the session store could not be reached or written
        ├── StoreUnavailable     the store is down: retry later, nothing was written
        └── LockLost             a turn outlived its contact lock: its commit was refused

Each message says what went wrong, where, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class PalabreError(Exception):
    """Base of every error Palabre raises on purpose."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a flow or catalog, located as file:line:column (1-based)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""
    severity: str = "error"
    topic: str = "flow"  # "translation" problems fail `palabre check` but not a running engine

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class FlowError(PalabreError):
    """A flow could not be loaded; `problems` lists each one with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(PalabreError):
    """A required setting or secret is missing or malformed."""


class TemplateError(PalabreError):
    """A template could not be rendered; the message names the template and the cause."""


class ActionError(PalabreError):
    """A plugin action failed. `user_message` is safe to show to the contact."""

    def __init__(self, message: str, *, user_message: str | None = None) -> None:
        super().__init__(message)
        self.user_message = user_message


class PluginError(PalabreError):
    """A plugin could not be loaded or registers something invalid."""


class StoreError(PalabreError):
    """The session store failed. Nothing was half-written."""


class StoreUnavailable(StoreError):
    """The session store cannot be reached; the caller should retry later."""


class LockLost(StoreError):
    """A turn's lease on its contact lapsed before it committed, so it wrote nothing.

    Another worker may have taken the contact over; the provider's retry is processed anew.
    """
