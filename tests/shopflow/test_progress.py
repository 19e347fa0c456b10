"""The progress display: redrawn in place on a terminal, throttled plain lines elsewhere."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from shopflow.cli import main
from shopflow.progress import CLEAR_LINE, format_seconds, progress
from tests.shopflow.adapters.test_online_retail_ii import SOURCE, write_parquet


class FakeTTY(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def plain_lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_format_seconds() -> None:
    assert format_seconds(4.24) == "4.2s"
    assert format_seconds(185) == "3m05s"
    assert format_seconds(3720) == "1h02m"


def test_terminal_redraws_one_line_with_count_percent_eta_and_ends_with_a_final_line() -> None:
    stream, clock = FakeTTY(), FakeClock()
    with progress("load demo", total=4, unit="partitions", stream=stream, clock=clock) as p:
        for day in ("2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"):
            clock.tick(2.0)
            p.advance(1, detail=day)
    text = stream.getvalue()
    # no newline until the end: every state overwrites the previous one in place
    assert text.count("\n") == 1 and text.endswith("\n")
    frames = text.rstrip("\n").split(CLEAR_LINE)[1:]
    assert frames[0] == "load demo: started (4 partitions)"
    assert frames[1] == "load demo: 1/4 partitions (25%) elapsed 2.0s ETA 6.0s - 2025-01-01"
    assert frames[2] == "load demo: 2/4 partitions (50%) elapsed 4.0s ETA 4.0s - 2025-01-02"
    assert frames[4] == "load demo: 4/4 partitions (100%) elapsed 8.0s - 2025-01-04"
    assert frames[-1] == "load demo: done, 4/4 partitions in 8.0s"


def test_terminal_redraws_are_throttled_but_the_last_count_is_shown() -> None:
    stream, clock = FakeTTY(), FakeClock()
    with progress("load", total=100, unit="partitions", stream=stream, clock=clock) as p:
        for _ in range(100):
            clock.tick(0.01)  # 100 advances in one second: about 10 redraws
            p.advance()
    frames = stream.getvalue().split(CLEAR_LINE)[1:]
    assert 5 <= len(frames) <= 15
    assert any(f.startswith("load: 100/100 partitions (100%)") for f in frames)


def test_not_a_terminal_gets_throttled_plain_lines() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with progress("load", total=1000, unit="partitions", stream=stream, clock=clock) as p:
        for _ in range(1000):
            clock.tick(0.05)  # 50 s in all: neither the 10 s nor the 10 % rule fires each time
            p.advance()
    lines = plain_lines(stream)
    assert CLEAR_LINE not in stream.getvalue()
    assert lines[0] == "load: started (1000 partitions)"
    assert lines[-1] == "load: done, 1000/1000 partitions in 50.0s"
    progress_lines = lines[1:-1]
    # one line per 10 % (every 5 s here, so the 10 s rule never fires first)
    assert len(progress_lines) == 10
    assert progress_lines[0] == "load: 100/1000 partitions (10%) elapsed 5.0s ETA 45.0s"
    assert progress_lines[4].startswith("load: 500/1000 partitions (50%)")


def test_not_a_terminal_logs_at_least_every_ten_seconds_when_progress_is_slow() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with progress("train", total=1000, stream=stream, clock=clock) as p:
        for _ in range(30):
            clock.tick(1.0)  # 3 % in 30 s: only the time rule fires
            p.advance()
    counts = [line for line in plain_lines(stream) if "/1000 items (" in line]
    assert [c.split()[1] for c in counts] == ["10/1000", "20/1000", "30/1000"]


def test_phases_without_a_total_are_plain_lines_with_elapsed_time() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with progress("training demand_forecast", stream=stream, clock=clock) as p:
        p.phase("forecaster fold 1/2: origin 2025-04-01")
        clock.tick(65)
        p.phase("forecaster fold 2/2: origin 2025-04-29")
        clock.tick(5)
    assert plain_lines(stream) == [
        "training demand_forecast: started",
        "training demand_forecast: forecaster fold 1/2: origin 2025-04-01 (0.0s)",
        "training demand_forecast: forecaster fold 2/2: origin 2025-04-29 (1m05s)",
        "training demand_forecast: done in 1m10s",
    ]


def test_phase_on_a_terminal_is_redrawn_in_place() -> None:
    stream, clock = FakeTTY(), FakeClock()
    with progress("backtest forecast", stream=stream, clock=clock) as p:
        clock.tick(3)
        p.phase("forecaster fold 2/3: origin 2025-04-01")
    frames = stream.getvalue().rstrip("\n").split(CLEAR_LINE)[1:]
    assert frames == [
        "backtest forecast: started",
        "backtest forecast: elapsed 3.0s - forecaster fold 2/3: origin 2025-04-01",
        "backtest forecast: done in 3.0s",
    ]


@pytest.mark.parametrize("stream_type", [io.StringIO, FakeTTY])
def test_a_total_of_zero_prints_only_start_and_end(stream_type) -> None:
    stream, clock = stream_type(), FakeClock()
    with progress("load", total=0, unit="partitions", stream=stream, clock=clock) as p:
        for _ in range(3):
            clock.tick(20)
            p.advance(0)
    text = stream.getvalue()
    assert text.count("load:") == 2
    assert "load: started (0 partitions)" in text
    assert text.endswith("load: done in 1m00s\n")


@pytest.mark.parametrize("stream_type", [io.StringIO, FakeTTY])
def test_an_exception_leaves_a_final_line_saying_it_failed(stream_type) -> None:
    stream, clock = stream_type(), FakeClock()
    with pytest.raises(RuntimeError, match="disk full"):
        with progress("load", total=10, unit="partitions", stream=stream, clock=clock) as p:
            clock.tick(3)
            p.advance(3, detail="order_lines 2025-01-03")
            raise RuntimeError("disk full")
    last = stream.getvalue().rstrip("\n").split("\n")[-1].split(CLEAR_LINE)[-1]
    assert last == (
        "load: FAILED after 3.0s, 3/10 partitions at order_lines 2025-01-03 (RuntimeError)"
    )
    assert stream.getvalue().endswith("\n")


def test_a_broken_stream_does_not_fail_the_work() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("no space left on device")

    with progress("load", total=2, stream=Closed(), clock=FakeClock()) as p:
        p.advance(2)
    assert p.count == 2


def test_shopflow_load_reports_its_partitions(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SHOPFLOW_HOME", str(tmp_path / "home"))
    source = write_parquet(tmp_path)

    assert main(["load", "--source", SOURCE, str(source)]) == 0

    out, err = capsys.readouterr()
    assert json.loads(out)["dates_written"] == 5  # stdout stays the result alone
    lines = err.splitlines()  # pytest's capture is no terminal: plain lines
    assert "load online-retail-ii: reading online_retail_ii.parquet: started" in lines
    # 5 order_lines dates, 3 products dates, 2 customers dates
    assert "load online-retail-ii: started (10 partitions)" in lines
    assert any(
        line.startswith("load online-retail-ii: done, 10/10 partitions in ") for line in lines
    )
    counted = [line for line in lines if "/10 partitions (" in line]
    assert counted and counted[-1].startswith("load online-retail-ii: 10/10 partitions (100%)")
    assert counted[-1].endswith("- customers 2010-07-02")
