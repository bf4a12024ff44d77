"""HdrHistogram helpers: microseconds, 1 us .. 60 s, 3 significant figures."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_FIGURES = 3
SUMMARY_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
PLOT_PERCENTILES = (
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9, 99.95, 99.99, 100.0,
)  # fmt: skip


def us(ms: float) -> int:
    """Milliseconds (spec, reports) to the microseconds histograms and thresholds count in."""
    return round(ms * 1000)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def encode(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    if not text:
        return new_histogram()
    return HdrHistogram.decode(text.encode("ascii"))


def merge(histograms: list[HdrHistogram]) -> HdrHistogram:
    total = new_histogram()
    for histogram in histograms:
        if histogram.get_total_count():
            total.add(histogram)
    return total


def percentile_ms(histogram: HdrHistogram, percentile: float) -> float | None:
    if not histogram.get_total_count():
        return None
    return histogram.get_value_at_percentile(percentile) / 1000.0


def summary_ms(histogram: HdrHistogram) -> dict[str, float | None]:
    """count, mean, min, percentiles and max, in milliseconds (None when empty)."""
    count = histogram.get_total_count()
    out: dict[str, float | None] = {"count": float(count)}
    if not count:
        out.update({"mean": None, "min": None, "max": None})
        out.update({_pkey(p): None for p in SUMMARY_PERCENTILES})
        return out
    out["mean"] = histogram.get_mean_value() / 1000.0
    out["min"] = histogram.get_min_value() / 1000.0
    for p in SUMMARY_PERCENTILES:
        out[_pkey(p)] = histogram.get_value_at_percentile(p) / 1000.0
    out["max"] = histogram.get_max_value() / 1000.0
    return out


def _pkey(percentile: float) -> str:
    return f"p{percentile:g}".replace(".", "_")


def curve_ms(histogram: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, latency ms) points for a percentile plot."""
    if not histogram.get_total_count():
        return []
    return [(p, histogram.get_value_at_percentile(p) / 1000.0) for p in PLOT_PERCENTILES]


def count_above(histogram: HdrHistogram, value_us: float) -> int:
    """Recorded values above value_us (at the histogram's 0.1 % resolution)."""
    above = 0
    for item in histogram.get_recorded_iterator():
        if histogram.get_lowest_equivalent_value(item.value_iterated_to) > value_us:
            above += item.count_added_in_this_iter_step
    return above


def credit(value_us: float, target_us: float) -> float:
    """1 within target, falling linearly to 0 at twice the target."""
    if value_us <= target_us:
        return 1.0
    return max(0.0, 2.0 - value_us / target_us)
