"""Structured logging: JSON lines to the run's log file, carrying session id and agent."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog

_handle: TextIO | None = None


def configure(log_file: Path | None, level: int = logging.INFO) -> None:
    """Send structlog events (JSON, one per line) to `log_file`; quiet autogen's own chatter."""
    global _handle
    if _handle is not None:
        _handle.close()
        _handle = None
    logging.getLogger("autogen_core").setLevel(logging.WARNING)
    logging.getLogger("autogen_core.events").setLevel(logging.WARNING)
    if log_file is None:  # outside a run: warnings and errors only, to stderr
        structlog.reset_defaults()
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        )
        return
    _handle = log_file.open("a", encoding="utf-8")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=_handle),
        cache_logger_on_first_use=False,
    )
