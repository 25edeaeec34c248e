"""Structured logs: one line per record, `key=value` fields, ids only.

Records carry ids (a keyed hash of the contact, flow and step ids, event names), never a
phone number, an answer or a message body. Extra fields come from `extra={...}`.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from palabre.config_checks import LOG_LEVELS, log_level_problem
from palabre.errors import ConfigError, PalabreError

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """`2026-01-01T00:00:00 INFO palabre.engine turn done contact=ab12 events=[...]`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = repr(exception_summary(record.exc_info[1]))
        extra = " ".join(f"{key}={value}" for key, value in sorted(fields.items()))
        line = (
            f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname} "
            f"{record.name} {record.getMessage()}"
        )
        return f"{line} {extra}" if extra else line


def exception_summary(exc: BaseException, limit: int = 300) -> str:
    """What failed, on one line and without personal data: type, message or place.

    Palabre's own errors (PalabreError) are written to say what and where without
    personal data, so their message is kept (cut at `limit` characters). Any other
    exception may carry a phone number or an answer in its message (an HTTP error quotes
    its URL and query), so only its type and the line that raised it are given.
    """
    if isinstance(exc, PalabreError):
        text = " ".join(str(exc).split())
        cut = text if len(text) <= limit else text[: limit - 1] + "…"
        return f"{type(exc).__name__}: {cut}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where} (message not logged: it may hold personal data)"


def configure_logging(level: str = "WARNING") -> None:
    """Send Palabre's logs to stderr at `level`; ConfigError names an unknown level."""
    name = level.strip().upper()
    if name not in LOG_LEVELS:
        raise ConfigError(str(log_level_problem("PALABRE_LOG_LEVEL", level)))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    logger = logging.getLogger("palabre")
    logger.handlers[:] = [handler]
    logger.setLevel(name)
    logger.propagate = False
