"""A run's final summary (task states, the cause of a failure), said where a full disk cannot
lose it.

A log file on a full disk takes part of a line and then nothing: a summary written only there
is cut or lost, and a handler whose write raises can even replace the error being reported
with its own OSError. So the summary goes to stderr first (a terminal or a pipe to the task
supervisor: no disk involved), then to the log, and a log that cannot take it is noted on
stderr, never raised. Light on purpose (standard library only): steps and the CLI import it.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO


def _write(stream: TextIO, text: str) -> bool:
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
    except (OSError, ValueError):  # stderr redirected to the full disk, or closed
        return False
    return True


def emit_summary(
    text: str,
    logger: logging.Logger | None = None,
    *,
    level: int = logging.ERROR,
    stream: TextIO | None = None,
) -> None:
    """Say ``text`` on stderr (or ``stream``) first, whole, then log it through ``logger``.

    Never raises for a log or a stream that cannot be written: the caller goes on to raise
    the error the summary describes. A handler that swallows its own write error (logging's
    ``handleError``) cannot cut the summary either, since stderr already has it.
    """
    stream = stream if stream is not None else sys.stderr
    said = _write(stream, text)
    if logger is None:
        return
    try:
        logger.log(level, "%s", text)
    except OSError as exc:  # a handler that lets its write error out
        note = f"(the log could not take this summary: {exc})"
        if not (said and _write(stream, note)):
            _write(sys.__stderr__ or stream, f"{text}\n{note}")
