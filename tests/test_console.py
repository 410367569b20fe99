"""What commands print when their output is a log: plain progress lines with an ETA, not too many."""

from __future__ import annotations

from inpaintlab.console import PlainProgress, duration


def test_plain_progress_prints_rate_and_eta_at_most_every_interval():
    now = [100.0]
    lines: list[str] = []
    p = PlainProgress("RIP telea", "inpaintings", every=10.0, write=lines.append, clock=lambda: now[0])
    now[0] += 60.0  # loading and the 0 % checkpoint: not part of the rate
    p(20, 120)  # resumed: 20 done by an earlier run; they do not count towards the rate
    now[0] += 3.0
    p(30, 120)  # within 10 s of the last line: nothing
    now[0] += 7.0
    p(40, 120)  # 20 new in 10 s -> 2/s, 80 left -> 40 s
    now[0] += 30.0
    p(120, 120)  # the end is always printed, without an ETA
    assert lines == [
        "RIP telea: 20/120 inpaintings (16.7 %), 1 min 00 s elapsed",
        "RIP telea: 40/120 inpaintings (33.3 %), 1 min 10 s elapsed, ETA 40 s",
        "RIP telea: 120/120 inpaintings (100.0 %), 1 min 40 s elapsed",
    ]


def test_durations_read_naturally():
    assert [duration(s) for s in (0.4, 59, 75, 3599, 4000)] == ["0 s", "59 s", "1 min 15 s", "59 min 59 s",
                                                                 "1 h 06 min"]
