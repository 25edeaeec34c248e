"""Structured logs: one line per record, `key=value` fields, ids only.

Records carry ids (a keyed hash of the contact, flow and step ids, event names), never a
phone number, an answer or a message body. Extra fields come from `extra={...}`.
"""

from __future__ import annotations

import logging
import sys

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """`2026-01-01T00:00:00 INFO palabre.engine turn done contact=ab12 events=[...]`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        extra = " ".join(f"{key}={value}" for key, value in sorted(fields.items()))
        line = (
            f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname} "
            f"{record.name} {record.getMessage()}"
        )
        return f"{line} {extra}" if extra else line


def configure_logging(level: str = "WARNING") -> None:
    """Send Palabre's logs to stderr at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    logger = logging.getLogger("palabre")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
