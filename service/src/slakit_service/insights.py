"""Rule-based "AI" answers: questions and insight requests resolved against the dataset.

No model and no network: a question is parsed into an `Interpretation` (metric, period,
breakdown, intent) and answered by scanning the rows of that period. The interpretation,
not the wording, is the cache key, so rephrased questions share one cached answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import lru_cache
from statistics import fmean, pstdev

from .analytics import LAST_DAY, change_pct, money, month_label, month_of_day, pct, slope
from .dataset import (
    AS_OF,
    CATEGORIES,
    CHANNELS,
    MOBILE,
    PLATFORMS,
    PRODUCTS_PER_CATEGORY,
    REGIONS,
    START_DATE,
    SalesData,
    date_day,
    day_date,
)

METRICS = {
    "revenue": ("revenue", "sales", "turnover", "income", "money"),
    "orders": ("orders", "order", "transactions", "purchases"),
    "customers": ("customers", "customer", "buyers", "shoppers", "users"),
    "average_order_value": ("aov", "average order", "basket", "order value"),
    "units": ("units", "items", "quantity", "volume"),
    "return_rate": ("return", "refund"),
    "gross_profit": ("profit", "margin"),
}
DIMENSIONS = {
    "region": ("region", "regions", "regional", "north", "south", "east", "west", "central"),
    "category": ("category", "categories", "product line", "department"),
    "channel": ("channel", "channels", "mobile", "web", "store", "marketplace", "online"),
    "platform": ("platform", "ios", "android", "device"),
}
INTENTS = {
    "trend": ("trend", "over time", "growth", "grow", "change", "evolv", "develop", "going"),
    "top": ("top", "best", "highest", "most", "largest", "leading"),
    "bottom": ("worst", "lowest", "least", "weakest", "smallest"),
}
MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

DATA_SOURCES = ("sales", "customers", "products", "mobile")
INSIGHT_TYPES = (
    "trend_analysis",
    "anomaly_detection",
    "forecast",
    "segmentation",
    "top_performers",
)
TIME_RANGES = {
    "last_7_days": 7,
    "last_30_days": 30,
    "last_90_days": 90,
    "last_365_days": 365,
    "year_to_date": LAST_DAY - date_day(date(AS_OF.year, 1, 1)) + 1,
    "quarter_to_date": LAST_DAY - date_day(date(AS_OF.year, 10, 1)) + 1,
}


@dataclass(frozen=True)
class Interpretation:
    metric: str
    period_label: str
    first_day: int
    last_day: int
    dimension: str | None
    intent: str
    understood: tuple[str, ...]  # which parts of the question were recognised

    def cache_name(self) -> str:
        dimension = self.dimension or "-"
        return f"ai:query:{self.metric}:{self.first_day}-{self.last_day}:{dimension}:{self.intent}"


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(w)}", text) for w in words)


def _quarter(year: int, quarter: int) -> tuple[int, int]:
    first = date(year, 3 * quarter - 2, 1)
    last = date(year + (quarter == 4), (3 * quarter) % 12 + 1, 1) - timedelta(days=1)
    return date_day(first), date_day(last)


def _month(year: int, month: int) -> tuple[int, int]:
    first = date(year, month, 1)
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return date_day(first), date_day(last)


def _period(text: str) -> tuple[str, int, int, bool]:
    """(label, first_day, last_day, recognised) clipped to the dataset."""
    years = [int(y) for y in re.findall(r"\b(20\d\d)\b", text)]
    year = years[0] if years else AS_OF.year
    year = min(max(year, START_DATE.year), AS_OF.year)
    if match := re.search(r"\bq([1-4])\b", text):
        quarter = int(match.group(1))
        first, last = _quarter(year, quarter)
        return f"Q{quarter} {year}", first, last, True
    for index, name in enumerate(MONTH_NAMES):
        if (re.search(rf"\b{name[:3]}(?:{name[3:]})?\b", text) and name != "may") or (
            name == "may" and re.search(r"\bin may\b", text)
        ):
            first, last = _month(year, index + 1)
            return f"{name.capitalize()} {year}", first, last, True
    if match := re.search(r"\b(?:last|past|previous)\s+(\d{1,3})\s+(day|week|month)s?\b", text):
        count, unit = int(match.group(1)), match.group(2)
        days = max(1, min(count * {"day": 1, "week": 7, "month": 30}[unit], LAST_DAY + 1))
        return f"last {count} {unit}s", LAST_DAY - days + 1, LAST_DAY, True
    if re.search(r"\b(?:this year|year to date|ytd)\b", text):
        return f"{AS_OF.year} year to date", date_day(date(AS_OF.year, 1, 1)), LAST_DAY, True
    if re.search(r"\blast year\b", text):
        y = AS_OF.year - 1
        return str(y), date_day(date(y, 1, 1)), date_day(date(y, 12, 31)), True
    if years:
        return str(year), date_day(date(year, 1, 1)), date_day(date(year, 12, 31)), True
    if re.search(r"\b(?:last|this|past) month\b", text):
        return "last 30 days", LAST_DAY - 29, LAST_DAY, True
    if re.search(r"\b(?:today|yesterday)\b", text):
        return AS_OF.isoformat(), LAST_DAY, LAST_DAY, True
    return "last 30 days", LAST_DAY - 29, LAST_DAY, False


@lru_cache(maxsize=1024)  # pure: the same question always means the same (no clock)
def interpret(question: str) -> Interpretation:
    text = " ".join(question.lower().split())
    understood = []
    metric = next((m for m, words in METRICS.items() if _has(text, words)), None)
    if metric:
        understood.append("metric")
    label, first, last, period_found = _period(text)
    if period_found:
        understood.append("period")
    dimension = None
    if match := re.search(r"\b(?:by|per|across|each)\s+(\w+)", text):
        dimension = next((d for d, w in DIMENSIONS.items() if match.group(1) in w), None)
    if dimension is None:
        dimension = next((d for d, w in DIMENSIONS.items() if _has(text, w)), None)
    if dimension:
        understood.append("dimension")
    intent = next((i for i, words in INTENTS.items() if _has(text, words)), "summary")
    if intent != "summary":
        understood.append("intent")
    if intent in ("top", "bottom") and dimension is None:
        dimension = "category"
    return Interpretation(
        metric=metric or "revenue",
        period_label=label,
        first_day=first,
        last_day=last,
        dimension=dimension,
        intent=intent,
        understood=tuple(understood),
    )


class _Totals:
    __slots__ = ("customers", "orders", "profit", "returns", "revenue", "units")

    def __init__(self) -> None:
        self.revenue = self.profit = 0.0
        self.orders = self.units = self.returns = 0
        self.customers: set[int] = set()

    def value(self, metric: str) -> float:
        if metric == "orders":
            return self.orders
        if metric == "customers":
            return len(self.customers)
        if metric == "average_order_value":
            return money(self.revenue / self.orders) if self.orders else 0.0
        if metric == "units":
            return self.units
        if metric == "return_rate":
            return pct(self.returns, self.orders)
        if metric == "gross_profit":
            return money(self.profit)
        return money(self.revenue)


def _dimension_names(dimension: str) -> tuple[str, ...]:
    return {"region": REGIONS, "category": CATEGORIES, "channel": CHANNELS}.get(
        dimension, PLATFORMS[1:]
    )


def _scan(
    data: SalesData, first: int, last: int, dimension: str | None, bucket_days: int
) -> tuple[_Totals, dict[int, _Totals], dict[int, _Totals]]:
    """Totals for [first, last], per dimension value, and per time bucket."""
    total = _Totals()
    groups: dict[int, _Totals] = {}
    buckets: dict[int, _Totals] = {}
    dim_column = {
        "region": data.region,
        "category": data.category,
        "channel": data.channel,
        "platform": data.platform,
    }.get(dimension or "", data.region)
    rows = data.day_range(first, last)
    s, e = rows.start, rows.stop
    columns = (
        data.day,
        dim_column,
        data.revenue,
        data.cost,
        data.quantity,
        data.returned,
        data.customer,
    )
    for day, dim, rev, cost, qty, ret, cust in zip(*(c[s:e] for c in columns), strict=True):
        key = month_of_day(day) if bucket_days >= 28 else (day - first) // bucket_days
        targets = [total, buckets.get(key) or buckets.setdefault(key, _Totals())]
        if dimension and not (dimension == "platform" and dim == 0):
            index = dim - 1 if dimension == "platform" else dim
            targets.append(groups.get(index) or groups.setdefault(index, _Totals()))
        for t in targets:
            t.revenue += rev
            t.profit += rev - cost
            t.orders += 1
            t.units += qty
            t.returns += ret
            t.customers.add(cust)
    return total, groups, buckets


def _format(metric: str, value: float) -> str:
    if metric in ("revenue", "average_order_value", "gross_profit"):
        return f"${value:,.2f}"
    if metric == "return_rate":
        return f"{value:.2f}%"
    return f"{value:,.0f}"


def answer(data: SalesData, meaning: Interpretation) -> dict:
    span = meaning.last_day - meaning.first_day + 1
    bucket_days = 30 if span > 92 else 7 if span > 21 else 1
    total, groups, buckets = _scan(
        data, meaning.first_day, meaning.last_day, meaning.dimension, bucket_days
    )
    prev_last = meaning.first_day - 1
    prev_first = max(0, prev_last - span + 1)
    previous = _scan(data, prev_first, prev_last, None, span)[0] if prev_last >= 0 else None
    metric = meaning.metric
    value = total.value(metric)
    metric_name = metric.replace("_", " ")
    sentences = [
        f"{metric_name.capitalize()} for {meaning.period_label} "
        f"({day_date(meaning.first_day)} to {day_date(meaning.last_day)}) was "
        f"{_format(metric, value)}"
        + ("." if metric == "orders" else f" across {total.orders:,} orders.")
    ]
    result: dict = {
        "metric": metric,
        "value": value,
        "orders": total.orders,
        "period": {
            "label": meaning.period_label,
            "from": day_date(meaning.first_day).isoformat(),
            "to": day_date(meaning.last_day).isoformat(),
        },
    }
    if previous is not None and previous.orders:
        before = previous.value(metric)
        delta = change_pct(value, before)
        result["previous_period"] = {
            "from": day_date(prev_first).isoformat(),
            "to": day_date(prev_last).isoformat(),
            "value": before,
            "change_pct": delta,
        }
        if delta is not None:
            direction = "up" if delta >= 0 else "down"
            sentences.append(f"That is {direction} {abs(delta):.1f}% on the previous period.")
    ordered = sorted(buckets)
    series = [
        {
            "bucket": month_label(k)
            if bucket_days >= 28
            else day_date(meaning.first_day + k * bucket_days).isoformat(),
            "value": buckets[k].value(metric),
        }
        for k in ordered
    ]
    if meaning.intent == "trend" or len(series) > 1:
        result["series"] = series
        values = [point["value"] for point in series]
        if len(values) > 1:
            peak = max(series, key=lambda point: point["value"])
            trend = slope(values)
            word = "rising" if trend > 0 else "falling" if trend < 0 else "flat"
            result["trend"] = {"direction": word, "slope_per_bucket": round(trend, 4)}
            sentences.append(
                f"The trend is {word}; the peak was {peak['bucket']} at "
                f"{_format(metric, peak['value'])}."
            )
    if meaning.dimension:
        names = _dimension_names(meaning.dimension)
        breakdown = sorted(
            ({"name": names[i], "value": g.value(metric)} for i, g in groups.items()),
            key=lambda row: row["value"],
            reverse=meaning.intent != "bottom",
        )
        result["breakdown"] = {"by": meaning.dimension, "rows": breakdown}
        if breakdown:
            lead = breakdown[0]
            word = "lowest" if meaning.intent == "bottom" else "highest"
            sentences.append(
                f"By {meaning.dimension}, {lead['name']} was {word} at "
                f"{_format(metric, lead['value'])}."
            )
    confidence = round(0.4 + 0.15 * len(meaning.understood), 2)
    if "metric" not in meaning.understood:
        sentences.append(
            "(No metric recognised, so this is revenue; ask about revenue, orders, customers, "
            "average order value, units, returns or profit, optionally by region, category, "
            "channel or platform.)"
        )
    return {
        "answer": " ".join(sentences),
        "interpretation": {**asdict(meaning), "understood": list(meaning.understood)},
        "confidence": min(confidence, 0.95),
        "result": result,
    }


# --- insight requests --------------------------------------------------------------------


def _daily_series(data: SalesData, source: str, first: int, last: int) -> list[float]:
    values = [0.0] * (last - first + 1)
    rows = data.day_range(first, last)
    s, e = rows.start, rows.stop
    if source == "customers":
        seen: list[set[int]] = [set() for _ in values]
        for day, cust in zip(data.day[s:e], data.customer[s:e], strict=True):
            seen[day - first].add(cust)
        return [float(len(x)) for x in seen]
    cols = (data.day[s:e], data.channel[s:e], data.revenue[s:e], data.quantity[s:e])
    for day, ch, rev, qty in zip(*cols, strict=True):
        if source == "products":
            values[day - first] += qty
        elif source == "sales" or ch == MOBILE:
            values[day - first] += rev
    return [round(v, 2) for v in values]


def _segments(data: SalesData, source: str, first: int, last: int) -> list[dict]:
    rows = data.day_range(first, last)
    s, e = rows.start, rows.stop
    if source in ("sales", "customers"):
        spend: dict[int, float] = {}
        for cust, rev in zip(data.customer[s:e], data.revenue[s:e], strict=True):
            spend[cust] = spend.get(cust, 0.0) + rev
        ranked_spend = sorted(spend.values(), reverse=True)
        n = len(ranked_spend)
        cuts = (("champions", 0.1), ("loyal", 0.4), ("occasional", 1.0))
        out, start = [], 0
        for name, upto in cuts:
            end = max(start, math.ceil(n * upto))
            part = ranked_spend[start:end]
            out.append(
                {
                    "segment": name,
                    "customers": len(part),
                    "revenue": money(sum(part)),
                    "revenue_share_pct": pct(sum(part), sum(ranked_spend)),
                }
            )
            start = end
        return out
    column, names = (
        (data.category, CATEGORIES) if source == "products" else (data.platform, PLATFORMS)
    )
    sums = [0.0] * len(names)
    for value, ch, rev in zip(column[s:e], data.channel[s:e], data.revenue[s:e], strict=True):
        if source == "mobile" and ch != MOBILE:
            continue
        sums[value] += rev
    total = sum(sums)
    return [
        {"segment": names[i] or "other", "revenue": money(v), "revenue_share_pct": pct(v, total)}
        for i, v in sorted(enumerate(sums), key=lambda item: item[1], reverse=True)
        if names[i]
    ]


def _top(data: SalesData, source: str, first: int, last: int) -> list[dict]:
    rows = data.day_range(first, last)
    s, e = rows.start, rows.stop
    scores: dict[str, float] = {}
    if source == "customers":
        for cust, rev in zip(data.customer[s:e], data.revenue[s:e], strict=True):
            key = f"customer-{cust:05d}"
            scores[key] = scores.get(key, 0.0) + rev
    elif source == "products":
        for prod, qty in zip(data.product[s:e], data.quantity[s:e], strict=True):
            key = f"{CATEGORIES[prod // PRODUCTS_PER_CATEGORY]} #{prod % PRODUCTS_PER_CATEGORY}"
            scores[key] = scores.get(key, 0.0) + qty
    else:
        for cat, reg, ch, rev in zip(
            data.category[s:e], data.region[s:e], data.channel[s:e], data.revenue[s:e], strict=True
        ):
            if source == "mobile" and ch != MOBILE:
                continue
            key = f"{CATEGORIES[cat]} in {REGIONS[reg]}"
            scores[key] = scores.get(key, 0.0) + rev
    best = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:5]
    unit = "units" if source == "products" else "revenue"
    return [{"name": name, unit: money(value)} for name, value in best]


def insight(data: SalesData, source: str, kind: str, time_range: str) -> dict:
    days = TIME_RANGES[time_range]
    first, last = LAST_DAY - days + 1, LAST_DAY
    measure = {"sales": "revenue", "customers": "active customers", "products": "units"}.get(
        source, "mobile revenue"
    )
    series = _daily_series(data, source, first, last)
    findings: list[dict] = []
    metrics: dict = {"total": money(sum(series)), "daily_mean": money(fmean(series))}
    if kind == "trend_analysis":
        half = len(series) // 2
        trend = slope(series)
        change = change_pct(sum(series[half:]), sum(series[:half])) if half else None
        metrics |= {"slope_per_day": round(trend, 4), "second_half_change_pct": change}
        weekday = [0.0] * 7
        for offset, value in enumerate(series):
            weekday[day_date(first + offset).weekday()] += value
        best_day = max(range(7), key=weekday.__getitem__)
        word = "rising" if trend > 0 else "falling" if trend < 0 else "flat"
        summary = f"Daily {measure} is {word} over {time_range.replace('_', ' ')}"
        if change is not None:
            summary += f" ({change:+.1f}% second half vs first half)"
        findings.append({"strongest_weekday": date(2024, 1, 1 + best_day).strftime("%A")})
    elif kind == "anomaly_detection":
        mean, spread = fmean(series), pstdev(series)
        scored = [
            (offset, value, (value - mean) / spread if spread else 0.0)
            for offset, value in enumerate(series)
        ]
        unusual = sorted((s for s in scored if abs(s[2]) >= 2.0), key=lambda s: -abs(s[2]))
        findings = [
            {
                "date": day_date(first + offset).isoformat(),
                "value": value,
                "expected": money(mean),
                "z_score": round(z, 2),
            }
            for offset, value, z in unusual[:5]
        ]
        metrics |= {"std_dev": money(spread), "anomalies": len(unusual)}
        summary = (
            f"{len(unusual)} day(s) with {measure} at least 2 standard deviations from the mean"
        )
    elif kind == "forecast":
        trend, mean = slope(series), fmean(series)
        weekday_sum, weekday_n = [0.0] * 7, [0] * 7
        for offset, value in enumerate(series):
            wd = day_date(first + offset).weekday()
            weekday_sum[wd] += value
            weekday_n[wd] += 1
        factor = [
            (weekday_sum[i] / weekday_n[i]) / mean if weekday_n[i] and mean else 1.0
            for i in range(7)
        ]
        centre = (len(series) - 1) / 2
        for ahead in range(1, 8):
            when = AS_OF + timedelta(days=ahead)
            base = mean + trend * (len(series) - 1 + ahead - centre)
            findings.append(
                {
                    "date": when.isoformat(),
                    "forecast": money(max(0.0, base * factor[when.weekday()])),
                }
            )
        metrics |= {"method": "linear trend x weekday factor", "slope_per_day": round(trend, 4)}
        summary = f"Next 7 days of {measure}: {sum(f['forecast'] for f in findings):,.2f} in total"
    elif kind == "segmentation":
        findings = _segments(data, source, first, last)
        summary = f"{len(findings)} segments by {measure}; largest: {findings[0]['segment']}"
    else:
        findings = _top(data, source, first, last)
        summary = f"Top performer by {measure}: {findings[0]['name']}" if findings else "No data"
    return {
        "data_source": source,
        "insight_type": kind,
        "time_range": time_range,
        "period": {"from": day_date(first).isoformat(), "to": day_date(last).isoformat()},
        "measure": measure,
        "summary": summary,
        "metrics": metrics,
        "findings": findings,
    }
