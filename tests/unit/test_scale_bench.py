"""The scale bench's rows: both labs side by side, the ratio and the targets judged."""

from slakit.benches.deploy import ConvergeFigures
from slakit.benches.scale import rows


def by_metric(small: ConvergeFigures, large: ConvergeFigures) -> dict[str, tuple[float, object]]:
    return {r.metric.split(" (")[0]: (round(r.value, 2), r.met) for r in rows(small, large)}


def test_rows_side_by_side_with_targets():
    small = ConvergeFigures(6, 58.0, (14.0, 12.0, 20.0), 0)
    large = ConvergeFigures(16, 150.0, (25.0, 30.0, 27.0), 0)
    got = by_metric(small, large)
    assert got["cold converge, 6 hosts"] == (58.0, True)
    assert got["cold converge, 16 hosts"] == (150.0, None)
    assert got["no-change converge, 6 hosts"] == (14.0, True)  # the median, not the mean
    assert got["no-change converge, 16 hosts"] == (27.0, True)
    assert got["no-change, 16 over 6 hosts"] == (1.93, True)


def test_targets_missed_and_changes_fail():
    small = ConvergeFigures(6, 61.0, (16.0,), 0)
    large = ConvergeFigures(16, 150.0, (33.0,), 1)
    got = by_metric(small, large)
    assert got["cold converge, 6 hosts"][1] is False
    assert got["no-change converge, 6 hosts"][1] is False
    assert got["no-change converge, 16 hosts"][1] is False  # a change in a no-change converge
    assert got["no-change, 16 over 6 hosts"] == (2.06, False)
