"""Dashboards computed from the dataset by a full or windowed scan (the cold path).

Every function returns a JSON-ready dict; the cache layer encodes it once.
"""

from __future__ import annotations

from datetime import date

from .dataset import (
    APP_VERSIONS,
    AS_OF,
    CATEGORIES,
    CHANNELS,
    DAYS,
    MOBILE,
    PLATFORMS,
    REGIONS,
    SalesData,
    date_day,
    day_date,
)

LAST_DAY = DAYS - 1
REVENUE_GRANULARITIES = ("daily", "weekly", "monthly")
_MONTH_OF_DAY = [(day_date(d).year - 2023) * 12 + day_date(d).month - 1 for d in range(DAYS)]
MONTHS = _MONTH_OF_DAY[-1] + 1


def month_label(month: int) -> str:
    return f"{2023 + month // 12}-{month % 12 + 1:02d}"


def month_of_day(day: int) -> int:
    return _MONTH_OF_DAY[day]


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def change_pct(current: float, previous: float) -> float | None:
    return round(100.0 * (current - previous) / previous, 2) if previous else None


def money(value: float) -> float:
    return round(value, 2)


def ranked(names: tuple[str, ...], values: list[float], key: str = "revenue") -> list[dict]:
    total = sum(values)
    rows = [
        {"name": name, key: money(value), "share_pct": pct(value, total)}
        for name, value in zip(names, values, strict=True)
    ]
    return sorted(rows, key=lambda row: row[key], reverse=True)


def slope(values: list[float]) -> float:
    """Least-squares slope per step; 0 for fewer than two points."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den


def executive(data: SalesData) -> dict:
    cat_rev = [0.0] * len(CATEGORIES)
    reg_rev = [0.0] * len(REGIONS)
    ch_rev = [0.0] * len(CHANNELS)
    month_rev = [0.0] * MONTHS
    month_orders = [0] * MONTHS
    month_of = _MONTH_OF_DAY
    total_rev = total_cost = returned_rev = 0.0
    units = returns = 0
    customers: set[int] = set()
    recent_first, previous_first = LAST_DAY - 29, LAST_DAY - 59
    recent = [0.0, 0, set()]
    previous = [0.0, 0]
    this_year_first = date_day(date(AS_OF.year, 1, 1))
    ytd_prev_last = date_day(AS_OF.replace(year=AS_OF.year - 1))
    ytd_prev_first = date_day(date(AS_OF.year - 1, 1, 1))
    ytd = ytd_prev = 0.0
    columns = (
        data.day,
        data.category,
        data.region,
        data.channel,
        data.quantity,
        data.revenue,
        data.cost,
        data.returned,
        data.customer,
    )
    for day, cat, reg, ch, qty, rev, cost, ret, cust in zip(*columns, strict=True):
        total_rev += rev
        total_cost += cost
        units += qty
        cat_rev[cat] += rev
        reg_rev[reg] += rev
        ch_rev[ch] += rev
        month = month_of[day]
        month_rev[month] += rev
        month_orders[month] += 1
        customers.add(cust)
        if ret:
            returns += 1
            returned_rev += rev
        if day >= this_year_first:
            ytd += rev
        elif ytd_prev_first <= day <= ytd_prev_last:
            ytd_prev += rev
        if day >= recent_first:
            recent[0] += rev
            recent[1] += 1
            recent[2].add(cust)
        elif day >= previous_first:
            previous[0] += rev
            previous[1] += 1
    orders = data.orders
    return {
        "dashboard": "executive",
        "as_of": AS_OF.isoformat(),
        "currency": "USD",
        "kpis": {
            "revenue": money(total_rev),
            "gross_profit": money(total_rev - total_cost),
            "gross_margin_pct": pct(total_rev - total_cost, total_rev),
            "orders": orders,
            "units": units,
            "customers": len(customers),
            "average_order_value": money(total_rev / orders) if orders else 0.0,
            "return_rate_pct": pct(returns, orders),
            "returned_revenue": money(returned_rev),
        },
        "last_30_days": {
            "revenue": money(recent[0]),
            "orders": recent[1],
            "customers": len(recent[2]),
            "average_order_value": money(recent[0] / recent[1]) if recent[1] else 0.0,
            "revenue_change_pct": change_pct(recent[0], previous[0]),
            "orders_change_pct": change_pct(recent[1], previous[1]),
        },
        "year_to_date": {
            "revenue": money(ytd),
            "previous_year_same_period": money(ytd_prev),
            "growth_pct": change_pct(ytd, ytd_prev),
        },
        "revenue_by_month": [
            {"month": month_label(m), "revenue": money(month_rev[m]), "orders": month_orders[m]}
            for m in range(MONTHS)
        ],
        "top_categories": ranked(CATEGORIES, cat_rev)[:5],
        "regions": ranked(REGIONS, reg_rev),
        "channels": ranked(CHANNELS, ch_rev),
    }


def _period_bounds(granularity: str) -> list[tuple[str, int, int]]:
    """(label, first_day, last_day) of each period, oldest first."""
    if granularity == "daily":
        return [(day_date(d).isoformat(), d, d) for d in range(LAST_DAY - 89, LAST_DAY + 1)]
    if granularity == "weekly":
        weeks = []
        for back in range(25, -1, -1):
            last = LAST_DAY - 7 * back
            weeks.append((f"week ending {day_date(last).isoformat()}", last - 6, last))
        return weeks
    firsts = [d for d in range(DAYS) if d == 0 or _MONTH_OF_DAY[d] != _MONTH_OF_DAY[d - 1]]
    lasts = [*(f - 1 for f in firsts[1:]), LAST_DAY]
    return [(month_label(_MONTH_OF_DAY[f]), f, la) for f, la in zip(firsts, lasts, strict=True)]


def revenue(data: SalesData, granularity: str) -> dict:
    periods = _period_bounds(granularity)
    first_day = periods[0][1]
    period_of_day = {}
    for index, (_, first, last) in enumerate(periods):
        for d in range(first, last + 1):
            period_of_day[d] = index
    count = len(periods)
    rev = [0.0] * count
    cost = [0.0] * count
    orders = [0] * count
    by_region = [[0.0] * len(REGIONS) for _ in range(count)]
    by_channel = [[0.0] * len(CHANNELS) for _ in range(count)]
    rows = data.day_range(first_day, LAST_DAY)
    start, stop = rows.start, rows.stop
    columns = (data.day, data.region, data.channel, data.revenue, data.cost)
    for day, reg, ch, r, c in zip(*(col[start:stop] for col in columns), strict=True):
        p = period_of_day[day]
        rev[p] += r
        cost[p] += c
        orders[p] += 1
        by_region[p][reg] += r
        by_channel[p][ch] += r
    series = []
    for p, (label, first, last) in enumerate(periods):
        window = rev[max(0, p - 2) : p + 1]
        series.append(
            {
                "period": label,
                "from": day_date(first).isoformat(),
                "to": day_date(last).isoformat(),
                "revenue": money(rev[p]),
                "gross_profit": money(rev[p] - cost[p]),
                "orders": orders[p],
                "average_order_value": money(rev[p] / orders[p]) if orders[p] else 0.0,
                "moving_average_3": money(sum(window) / len(window)),
                "change_pct": change_pct(rev[p], rev[p - 1]) if p else None,
                "by_region": {n: money(v) for n, v in zip(REGIONS, by_region[p], strict=True)},
                "by_channel": {n: money(v) for n, v in zip(CHANNELS, by_channel[p], strict=True)},
            }
        )
    best = max(range(count), key=rev.__getitem__)
    worst = min(range(count), key=rev.__getitem__)
    return {
        "dashboard": "revenue",
        "granularity": granularity,
        "as_of": AS_OF.isoformat(),
        "currency": "USD",
        "summary": {
            "revenue": money(sum(rev)),
            "orders": sum(orders),
            "periods": count,
            "best_period": {"period": periods[best][0], "revenue": money(rev[best])},
            "worst_period": {"period": periods[worst][0], "revenue": money(rev[worst])},
            "trend_per_period": money(slope(rev)),
        },
        "series": series,
    }


def mobile_dashboard(data: SalesData) -> dict:
    first = LAST_DAY - 89
    recent_first = LAST_DAY - 29
    total_rev = mobile_rev = 0.0
    mobile_orders = 0
    platform_rev = [0.0] * len(PLATFORMS)
    platform_orders = [0] * len(PLATFORMS)
    version_orders = [0] * len(APP_VERSIONS)
    hours = [0] * 24
    cat_rev = [0.0] * len(CATEGORIES)
    daily_buyers: dict[int, set[int]] = {}
    rows = data.day_range(first, LAST_DAY)
    start, stop = rows.start, rows.stop
    columns = (
        data.day,
        data.channel,
        data.platform,
        data.app_version,
        data.hour,
        data.category,
        data.revenue,
        data.customer,
    )
    for day, ch, plat, ver, hour, cat, rev, cust in zip(
        *(col[start:stop] for col in columns), strict=True
    ):
        total_rev += rev
        if ch != MOBILE:
            continue
        mobile_rev += rev
        mobile_orders += 1
        platform_rev[plat] += rev
        platform_orders[plat] += 1
        hours[hour] += 1
        cat_rev[cat] += rev
        if day >= recent_first:
            version_orders[ver] += 1
            daily_buyers.setdefault(day, set()).add(cust)
    monthly_share = _mobile_share_by_month(data)
    peak = sorted(range(24), key=hours.__getitem__, reverse=True)[:3]
    recent_version_total = sum(version_orders)
    return {
        "dashboard": "mobile_analytics",
        "as_of": AS_OF.isoformat(),
        "window_days": 90,
        "mobile": {
            "revenue": money(mobile_rev),
            "orders": mobile_orders,
            "average_order_value": money(mobile_rev / mobile_orders) if mobile_orders else 0.0,
            "share_of_revenue_pct": pct(mobile_rev, total_rev),
        },
        "platforms": [
            {
                "platform": PLATFORMS[p],
                "revenue": money(platform_rev[p]),
                "orders": platform_orders[p],
                "share_pct": pct(platform_rev[p], mobile_rev),
            }
            for p in range(1, len(PLATFORMS))
        ],
        "app_versions_last_30_days": [
            {"version": v, "orders_share_pct": pct(version_orders[i], recent_version_total)}
            for i, v in enumerate(APP_VERSIONS)
        ],
        "daily_active_buyers_last_30_days": round(
            sum(len(b) for b in daily_buyers.values()) / 30, 1
        ),
        "peak_hours": [{"hour": h, "orders": hours[h]} for h in peak],
        "top_categories": ranked(CATEGORIES, cat_rev)[:5],
        "mobile_share_by_month": monthly_share,
    }


def _mobile_share_by_month(data: SalesData) -> list[dict]:
    total = [0.0] * MONTHS
    mobile = [0.0] * MONTHS
    month_of = _MONTH_OF_DAY
    for day, ch, rev in zip(data.day, data.channel, data.revenue, strict=True):
        month = month_of[day]
        total[month] += rev
        if ch == MOBILE:
            mobile[month] += rev
    return [{"month": month_label(m), "share_pct": pct(mobile[m], total[m])} for m in range(MONTHS)]


def _mobile_window(data: SalesData, first: int, last: int) -> dict:
    rev = 0.0
    orders = returns = 0
    buyers: dict[int, int] = {}
    platform_orders = [0] * len(PLATFORMS)
    rows = data.day_range(first, last)
    start, stop = rows.start, rows.stop
    columns = (data.channel, data.platform, data.revenue, data.returned, data.customer)
    for ch, plat, r, ret, cust in zip(*(col[start:stop] for col in columns), strict=True):
        if ch != MOBILE:
            continue
        rev += r
        orders += 1
        returns += ret
        platform_orders[plat] += 1
        buyers[cust] = buyers.get(cust, 0) + 1
    repeat = sum(1 for n in buyers.values() if n > 1)
    return {
        "revenue": rev,
        "orders": orders,
        "buyers": len(buyers),
        "repeat_buyer_rate_pct": pct(repeat, len(buyers)),
        "return_rate_pct": pct(returns, orders),
        "ios_share_pct": pct(platform_orders[1], orders),
    }


def mobile_kpis(data: SalesData) -> dict:
    kpis = []
    for label, days in (("today", 1), ("last_7_days", 7), ("last_30_days", 30)):
        current = _mobile_window(data, LAST_DAY - days + 1, LAST_DAY)
        previous = _mobile_window(data, LAST_DAY - 2 * days + 1, LAST_DAY - days)
        aov = current["revenue"] / current["orders"] if current["orders"] else 0.0
        kpis.append(
            {
                "window": label,
                "revenue": money(current["revenue"]),
                "revenue_change_pct": change_pct(current["revenue"], previous["revenue"]),
                "orders": current["orders"],
                "orders_change_pct": change_pct(current["orders"], previous["orders"]),
                "buyers": current["buyers"],
                "average_order_value": money(aov),
                "repeat_buyer_rate_pct": current["repeat_buyer_rate_pct"],
                "return_rate_pct": current["return_rate_pct"],
                "ios_share_pct": current["ios_share_pct"],
            }
        )
    return {"kpis": "mobile", "as_of": AS_OF.isoformat(), "windows": kpis}
