"""Event-time alignment: whatever order the partitions' signals arrive in, the correlator sees one order."""

from __future__ import annotations

import random

from stream_processors.correlate.align import Aligner, PartitionClock

L = 30
S = 1_000_000  # one second in microseconds


def partition_stream(p: int, times: list[int], least: int | None = None) -> list[tuple[str, object]]:
    """What stage 1 writes for one partition: signals with their order keys, then a mark per batch of 3."""
    clock, out = PartitionClock(), []
    for i, t in enumerate(times):
        out.append(("sig", (clock.order_key(t, L, least), f"p{p}-{i}")))
        if i % 3 == 2:
            out.append(("mark", (f"e:{p}", clock.promise(L), clock.watermark_us)))
    out.append(("mark", (f"e:{p}", clock.promise(L), clock.watermark_us)))
    return out


def interleave(streams: list[list[tuple[str, object]]], rng: random.Random) -> list[tuple[str, object]]:
    """A random merge that keeps each partition's own order (what one signals partition receives)."""
    cursors, out = [0] * len(streams), []
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        p = rng.choice([i for i, s in enumerate(streams) if cursors[i] < len(s)])
        out.append(streams[p][cursors[p]])
        cursors[p] += 1
    return out


def released(arrivals: list[tuple[str, object]], expected: set[str]) -> list[str]:
    aligner, order = Aligner(), []
    for what, payload in arrivals:
        if what == "sig":
            key, sid = payload  # type: ignore[misc]
            if not aligner.offer(key, sid, {"id": sid}):
                order.append(f"late:{sid}")
        else:
            part, low, wm = payload  # type: ignore[misc]
            aligner.mark(part, low, 0, wm)
            threshold = aligner.threshold(expected)
            if threshold is not None:
                order.extend(str(s["id"]) for _, s in aligner.release(threshold))
    order.extend(str(s["id"]) for _, s in aligner.release(aligner.threshold(expected, idle=expected) or 0))
    return order


def test_every_interleaving_of_the_partitions_releases_the_same_sequence() -> None:
    for least in (None, 2):  # a fixed lateness, and one that adapts between 2 and L
        rng = random.Random(3)
        streams = []
        for p in range(3):
            times = sorted(rng.randint(0, 1000) for _ in range(40))
            times[10] -= 200  # one out-of-order event, later than the lateness allows
            times[25] -= 12  # one a little late
            streams.append(partition_stream(p, times, least))
        expected = {"e:0", "e:1", "e:2"}
        runs = [released(interleave(streams, random.Random(seed)), expected) for seed in range(30)]
        sequences = {tuple(run) for run in runs}
        assert len(sequences) == 1
        (seq,) = sequences
        assert not any(s.startswith("late:") for s in seq)
        assert sorted(seq) == sorted(f"p{p}-{i}" for p in range(3) for i in range(40))


def test_a_partition_in_order_waits_the_least_and_learns_to_wait_for_its_stragglers() -> None:
    clock = PartitionClock()
    for t in range(0, 60 * S, S):
        clock.order_key(t, 30 * S, S // 2)
    assert clock.promise(30 * S) == 59 * S - S // 2  # in order: half a second behind
    # a straggler 10 s late is ordered at the edge (nothing promised can be taken back) ...
    assert clock.order_key(49 * S, 30 * S, S // 2) == 59 * S - S // 2
    assert clock.promise(30 * S) == 59 * S - S // 2
    # ... and the partition now waits 1.5x that disorder, so the next such straggler keeps its own time
    clock.order_key(80 * S, 30 * S, S // 2)
    assert 14 * S < 80 * S - clock.promise(30 * S) <= 15 * S  # (the envelope faded a little over 21 s)
    assert clock.order_key(70 * S, 30 * S, S // 2) == 70 * S
    # never past the most: a 100 s straggler asks for 150 s, the partition waits 30
    clock.order_key(200 * S, 30 * S, S // 2)
    clock.order_key(100 * S, 30 * S, S // 2)
    clock.order_key(240 * S, 30 * S, S // 2)
    assert clock.promise(30 * S) == 210 * S


def test_the_learned_wait_fades_over_event_time_and_the_promise_never_goes_back() -> None:
    clock = PartitionClock()
    clock.order_key(100 * S, 30 * S, S)
    clock.order_key(90 * S, 30 * S, S)  # 10 s of disorder: wait 15 s
    promises = []
    for t in range(101 * S, 7200 * S, 10 * S):  # two hours in order
        clock.order_key(t, 30 * S, S)
        promises.append(clock.promise(30 * S))
    assert promises == sorted(promises)
    assert clock.watermark_us - clock.promise(30 * S) == S  # twelve half-lives later: the least again
    again = PartitionClock.from_json(clock.to_json())
    assert again == clock


def test_a_fixed_lateness_is_the_old_behaviour() -> None:
    clock = PartitionClock()
    for t in (100, 500, 300, 900):
        clock.order_key(t, L)
        assert clock.promise(L) == clock.watermark_us - L


def test_nothing_is_released_until_every_expected_partition_sent_a_mark() -> None:
    aligner = Aligner()
    aligner.offer(5, "a", {"id": "a"})
    aligner.mark("e:0", 1000)
    assert aligner.threshold({"e:0", "e:1"}) is None
    aligner.mark("e:1", 100)
    assert [s["id"] for _, s in aligner.release(aligner.threshold({"e:0", "e:1"}) or 0)] == ["a"]


def test_a_signal_behind_the_release_point_is_handed_back_at_once() -> None:
    aligner = Aligner()
    aligner.mark("e:0", 500)
    aligner.release(aligner.threshold({"e:0"}) or 0)
    assert aligner.offer(100, "old", {"id": "old"}) is False


def test_a_late_event_is_ordered_at_its_partitions_edge() -> None:
    clock = PartitionClock()
    clock.order_key(1000, L)
    assert clock.order_key(10, L) == 1000 - L


def test_the_aligner_round_trips_through_json() -> None:
    aligner = Aligner()
    aligner.mark("e:0", 7, 3, 9)
    aligner.offer(3, "x", {"id": "x"})
    assert Aligner.from_json(aligner.to_json()) == aligner


def test_state_saved_before_promises_reads_its_watermarks_as_trailing_by_the_lateness() -> None:
    old = {"marks": {"e:0": 1000}, "offs": {"e:0": 4}, "rel": 900, "buf": [[950, "x", {"id": "x"}]]}
    aligner = Aligner.from_json(old, L)
    assert aligner.threshold({"e:0"}) == 1000 - L
    assert aligner.threshold({"e:0"}, idle={"e:0"}) == 1001
    assert PartitionClock.from_json({"wm": 1000}).promise(L) == 1000 - L


def test_an_idle_partition_holds_nothing_back_and_when_all_are_idle_everything_goes() -> None:
    aligner = Aligner()
    for key, sid in ((100, "a"), (900, "b"), (990, "c")):
        aligner.offer(key, sid, {"id": sid})
    aligner.mark("e:0", 1000 - L, 50, 1000)
    aligner.mark("e:1", 200 - L, 7, 200)
    expected = {"e:0", "e:1"}
    assert aligner.threshold(expected) == 200 - L  # e:1 is behind: it may still send older keys
    assert aligner.threshold(expected, idle={"e:1"}) == 1000 - L  # nothing more is coming from it
    everything = aligner.threshold(expected, idle=expected)  # past the watermarks, not just the promises
    assert [s["id"] for _, s in aligner.release(everything or 0)] == ["a", "b", "c"]
