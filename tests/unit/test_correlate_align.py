"""Event-time alignment: whatever order the partitions' signals arrive in, the correlator sees one order."""

from __future__ import annotations

import random

from stream_processors.correlate.align import Aligner, PartitionClock

L = 30


def partition_stream(p: int, times: list[int]) -> list[tuple[str, object]]:
    """What stage 1 writes for one partition: signals with their order keys, then a mark per batch of 3."""
    clock, out = PartitionClock(), []
    for i, t in enumerate(times):
        out.append(("sig", (clock.order_key(t, L), f"p{p}-{i}")))
        if i % 3 == 2:
            out.append(("mark", (f"e:{p}", clock.watermark_us)))
    out.append(("mark", (f"e:{p}", clock.watermark_us)))
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
            part, wm = payload  # type: ignore[misc]
            aligner.mark(part, wm)
            threshold = aligner.threshold(expected, L)
            if threshold is not None:
                order.extend(str(s["id"]) for _, s in aligner.release(threshold))
    return order


def test_every_interleaving_of_the_partitions_releases_the_same_sequence() -> None:
    rng = random.Random(3)
    streams = []
    for p in range(3):
        times = sorted(rng.randint(0, 1000) for _ in range(40))
        times[10] -= 200  # one out-of-order event, later than the lateness allows
        streams.append(partition_stream(p, times))
    expected = {"e:0", "e:1", "e:2"}
    sequences = {tuple(released(interleave(streams, random.Random(seed)), expected)) for seed in range(30)}
    assert len(sequences) == 1
    (seq,) = sequences
    assert not any(s.startswith("late:") for s in seq)


def test_nothing_is_released_until_every_expected_partition_sent_a_mark() -> None:
    aligner = Aligner()
    aligner.offer(5, "a", {"id": "a"})
    aligner.mark("e:0", 1000)
    assert aligner.threshold({"e:0", "e:1"}, L) is None
    aligner.mark("e:1", 100)
    assert [s["id"] for _, s in aligner.release(aligner.threshold({"e:0", "e:1"}, L) or 0)] == ["a"]


def test_a_signal_behind_the_release_point_is_handed_back_at_once() -> None:
    aligner = Aligner()
    aligner.mark("e:0", 500)
    aligner.release(aligner.threshold({"e:0"}, L) or 0)
    assert aligner.offer(100, "old", {"id": "old"}) is False


def test_a_late_event_is_ordered_at_its_partitions_edge() -> None:
    clock = PartitionClock()
    clock.order_key(1000, L)
    assert clock.order_key(10, L) == 1000 - L


def test_the_aligner_round_trips_through_json() -> None:
    aligner = Aligner()
    aligner.mark("e:0", 7)
    aligner.offer(3, "x", {"id": "x"})
    assert Aligner.from_json(aligner.to_json()) == aligner


def test_an_idle_partition_holds_nothing_back_and_when_all_are_idle_everything_goes() -> None:
    aligner = Aligner()
    for key, sid in ((100, "a"), (900, "b"), (990, "c")):
        aligner.offer(key, sid, {"id": sid})
    aligner.mark("e:0", 1000, 50)
    aligner.mark("e:1", 200, 7)
    expected = {"e:0", "e:1"}
    assert aligner.threshold(expected, L) == 200 - L  # e:1 is behind: it may still send older keys
    assert aligner.threshold(expected, L, idle={"e:1"}) == 1000 - L  # nothing more is coming from it
    everything = aligner.threshold(expected, L, idle=expected)
    assert [s["id"] for _, s in aligner.release(everything or 0)] == ["a", "b", "c"]
