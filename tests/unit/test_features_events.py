from __future__ import annotations

from datetime import UTC, datetime

from models.features_events import Baseline, Ref, Window, calendar, window_start


def ref(i: str) -> Ref:
    return Ref(i, "kubernetes", "log", "info", f"text {i}")


def test_windows_are_tumbling_and_aligned_on_the_epoch() -> None:
    assert window_start(125_000_000, 60_000_000) == 120_000_000
    assert window_start(120_000_000, 60_000_000) == 120_000_000
    assert window_start(119_999_999, 60_000_000) == 60_000_000


def test_calendar_gives_hour_of_day_and_day_of_week() -> None:
    assert calendar(datetime(2024, 5, 1, 13, 59, tzinfo=UTC)) == {"hour_of_day": 13.0, "day_of_week": 2.0}


def test_a_window_counts_templates_and_errors_and_keeps_the_first_event_of_each() -> None:
    w = Window(0)
    w.add("t1", False, lambda: ref("a"))
    w.add("t1", True, lambda: ref("b"))
    w.add(None, True, lambda: ref("c"))
    assert (w.total, w.errors, w.counts) == (3, 2, {"t1": 2})
    assert w.refs["t1"].event_id == "a"
    assert w.first_error is not None and w.first_error.event_id == "b"
    assert abs(w.error_rate - 2 / 3) < 1e-12
    assert Window.from_json(w.to_json()) == w


def test_a_robust_baseline_floors_its_scale_so_a_flat_history_is_not_infinitely_strict() -> None:
    b = Baseline(5)
    for v in [4, 4, 4, 4, 4, 4, 4]:
        b.push(v)
    assert len(b) == 5
    r = b.compare(30, 1.0, counts=True)
    assert r.median == 4 and r.scale == 2.0 and r.z == 13.0
    assert b.compare(0.3, 0.05).scale == 0.05


def test_a_gap_pushes_zeros_but_never_more_than_the_baseline_holds() -> None:
    b = Baseline(3, [5.0])
    b.push_zeros(1000)
    assert b.values == [0.0, 0.0, 0.0]
