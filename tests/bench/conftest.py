"""Shows the profile backtest tables in the run's own output (CI does not pass ``-s``)."""

from __future__ import annotations

import pytest

# set by tests/bench/test_backtest_profiles.py to the Markdown report of the run it made
PROFILES_REPORT = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, config):
    """Print the profile backtest report, when this run made one, after the test summary."""
    text = config.stash.get(PROFILES_REPORT, None)
    if text:
        terminalreporter.section("backtests per shop profile (this run; bench/.work/profiles.md)")
        terminalreporter.write_line(text)
