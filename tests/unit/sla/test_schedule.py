"""Open-loop scheduling against a fake clock: intended times, lag, no coordinated omission."""

import asyncio

from slakit.sla.schedule import arrival_times, dispatch_open_loop, merged_schedule


class FakeClock:
    """Time moves only when the dispatcher sleeps; `stalls` make chosen sleeps overshoot."""

    def __init__(self, start: float = 100.0, stalls: dict[int, float] | None = None) -> None:
        self.t = start
        self.sleeps = 0
        self.stalls = stalls or {}

    def now(self) -> float:
        return self.t

    async def sleep_until(self, when: float) -> None:
        self.sleeps += 1
        self.t = max(self.t, when) + self.stalls.get(self.sleeps, 0.0)
        await asyncio.sleep(0)

    def close(self) -> None:
        pass


def run(schedule, clock):
    sent = []
    count = asyncio.run(
        dispatch_open_loop(schedule, clock, lambda t, s, lag: sent.append((t, s, lag, clock.t)))
    )
    return count, sent


def test_requests_go_out_at_their_intended_times():
    clock = FakeClock()
    count, sent = run(merged_schedule([arrival_times(100.0, 10.0, 5)]), clock)
    assert count == 5
    assert [round(t, 9) for t, *_ in sent] == [100.0, 100.1, 100.2, 100.3, 100.4]
    assert all(lag == 0.0 for *_, lag, _ in sent)


def test_a_stall_is_caught_up_with_intended_times_kept():
    # the second sleep (waiting for slot 2 at 100.2) returns 0.25 s late, at 100.45
    clock = FakeClock(stalls={2: 0.25})
    _, sent = run(merged_schedule([arrival_times(100.0, 10.0, 6)]), clock)
    intended = [round(t, 9) for t, *_ in sent]
    assert intended == [100.0, 100.1, 100.2, 100.3, 100.4, 100.5]
    # slots 2, 3 and 4 leave together at 100.45, each stamped with its own intended time
    lags = [round(lag, 9) for _, _, lag, _ in sent]
    assert lags == [0.0, 0.0, 0.25, 0.15, 0.05, 0.0]
    assert [round(now, 9) for *_, now in sent][2:5] == [100.45, 100.45, 100.45]


def test_processes_share_slots_without_overlap():
    per_process = [list(arrival_times(0.0, 100.0, 10, index=i, stride=3)) for i in range(3)]
    assert sorted(t for ts in per_process for t in ts) == list(arrival_times(0.0, 100.0, 10))
    assert len(per_process[0]) == 4 and len(per_process[2]) == 3


def test_several_endpoints_interleave_in_time_order():
    schedule = merged_schedule(
        [arrival_times(0.0, 2.0, 3), arrival_times(0.0, 2.0, 3, offset=0.25)]
    )
    assert [(round(t, 3), s) for t, s in schedule] == [
        (0.0, 0), (0.25, 1), (0.5, 0), (0.75, 1), (1.0, 0), (1.25, 1),
    ]  # fmt: skip
