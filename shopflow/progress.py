"""A progress display for long commands (``shopflow load``, trainings, backtests).

Use it as a context manager::

    with progress("load online-retail-ii", total=len(dates), unit="partitions") as p:
        for day in dates:
            ...
            p.advance(1, detail=str(day))

    with progress("training demand_forecast") as p:  # no total: phases only
        p.phase("forecaster fold 2/3: training at origin 2025-04-01")

Where it goes: always to **stderr** (not ``logging``), in both modes, because

- stdout carries what a command returns (``shopflow load`` prints JSON, the backtests their
  tables): progress must never mix into something a script reads;
- the CLI configures no logging handler, so ``logging`` INFO lines would vanish there, while
  Airflow captures a task's stderr into its task log just as it does logging records.

Two renderings, chosen by ``stream.isatty()``:

- a terminal: one line redrawn in place (``\\r``, then clear to end of line) with what runs,
  count/total, percent, elapsed time and an ETA (or the current phase), redrawn at most every
  ``redraw_seconds``; when the block ends, a final line with the total time;
- anything else (Airflow task logs, CI, pipes): plain lines, a start line, a count line at
  most every ``log_seconds`` or every ``log_percent`` % of the total, each phase (phases are
  few by design: folds, steps), and an end line. With a total of 0 only the start and end
  lines are written.

An exception leaving the block writes a final line saying it failed (and is re-raised).
Standard library only: modules that DAG files import at parse time may import this one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_seconds", "progress"]

CLEAR_LINE = "\r\x1b[K"  # back to column 0, erase to the end of the line


def format_seconds(seconds: float) -> str:
    """``4.2s``, ``3m05s``, ``1h02m``: short enough for one terminal line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """One long operation's progress; see the module docstring. Build it with
    :func:`progress`."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        unit: str = "items",
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_seconds: float = 10.0,
        log_percent: float = 10.0,
        redraw_seconds: float = 0.1,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.count = 0
        self.detail = ""
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.log_seconds = log_seconds
        self.log_percent = log_percent
        self.redraw_seconds = redraw_seconds
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.started = 0.0
        self._last_shown = 0.0
        self._last_percent = 0.0

    # -- what callers use ----------------------------------------------------------------
    def advance(self, n: int = 1, detail: str | None = None) -> None:
        """``n`` more units done; ``detail`` (e.g. the date just written) is shown with them."""
        self.count += n
        if detail is not None:
            self.detail = detail
        if self.total == 0:
            return  # nothing to count: the start and end lines say it all
        now = self.clock()
        since = now - self._last_shown
        if self.tty:
            finished = self.total is not None and self.count >= self.total
            if finished or since >= self.redraw_seconds:
                self._redraw(now)
            return
        percent = 100.0 * self.count / self.total if self.total else 0.0
        if since >= self.log_seconds or (
            self.total and percent - self._last_percent >= self.log_percent
        ):
            self._last_percent = percent
            self._line(self._status(now), now)

    def phase(self, text: str) -> None:
        """A step without a count of its own (``"forecaster fold 2/3"``): always shown."""
        self.detail = text
        if self.tty:
            self._redraw()
        else:
            self._line(f"{self.what}: {text} ({format_seconds(self.clock() - self.started)})")

    # -- context manager -----------------------------------------------------------------
    def __enter__(self) -> Progress:
        self.started = self._last_shown = self.clock()
        size = f" ({self.total} {self.unit})" if self.total is not None else ""
        if self.tty:
            self._write(f"{CLEAR_LINE}{self.what}: started{size}")
        else:
            self._line(f"{self.what}: started{size}")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        elapsed = format_seconds(self.clock() - self.started)
        done = self._counted()
        if exc_type is None:
            text = f"{self.what}: done{done} in {elapsed}"
        else:
            word = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
            at = f" at {self.detail}" if self.detail else ""
            text = f"{self.what}: {word} after {elapsed}{done}{at} ({exc_type.__name__})"
        if self.tty:
            self._write(f"{CLEAR_LINE}{text}\n")
        else:
            self._line(text)
        return False  # never swallow the exception

    # -- rendering -----------------------------------------------------------------------
    def _counted(self) -> str:
        """``, 3/10 partitions`` (or ``, 3 partitions`` without a total), empty when none."""
        if self.total:
            return f", {self.count}/{self.total} {self.unit}"
        if self.count:
            return f", {self.count} {self.unit}"
        return ""

    def _status(self, now: float) -> str:
        elapsed = now - self.started
        parts = [f"{self.what}:"]
        if self.total:
            percent = 100.0 * self.count / self.total
            parts.append(f"{self.count}/{self.total} {self.unit} ({percent:.0f}%)")
            parts.append(f"elapsed {format_seconds(elapsed)}")
            if 0 < self.count < self.total:
                eta = elapsed / self.count * (self.total - self.count)
                parts.append(f"ETA {format_seconds(eta)}")
        else:
            if self.count:
                parts.append(f"{self.count} {self.unit}")
            parts.append(f"elapsed {format_seconds(elapsed)}")
        if self.detail:
            parts.append(f"- {self.detail}")
        return " ".join(parts)

    def _redraw(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self._last_shown = now
        self._write(CLEAR_LINE + self._status(now))

    def _line(self, text: str, now: float | None = None) -> None:
        self._last_shown = self.clock() if now is None else now
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full stderr must not fail the work it reports on


def progress(
    what: str,
    total: int | None = None,
    unit: str = "items",
    *,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    **throttle: float,
) -> Progress:
    """A :class:`Progress` for ``with``: ``what`` runs, ``total`` ``unit`` to do (None:
    phases only). ``stream`` defaults to stderr; ``clock`` is injectable for tests;
    ``throttle`` sets ``log_seconds``, ``log_percent`` or ``redraw_seconds``."""
    return Progress(what, total, unit, stream=stream, clock=clock, **throttle)
