"""A synthetic retail sales dataset, generated deterministically from a seed at start.

Columns are compact `array`s sorted by day, so that a worker holds tens of thousands of
orders in a few MB and a full scan (a cold dashboard) costs tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, timedelta

START_DATE = date(2023, 1, 1)
DAYS = 731  # 2023-01-01 .. 2024-12-31; "today" for every relative range is the last day
AS_OF = START_DATE + timedelta(days=DAYS - 1)

CATEGORIES = (
    "Electronics",
    "Apparel",
    "Home & Garden",
    "Beauty",
    "Sports",
    "Toys",
    "Grocery",
    "Books",
)
CATEGORY_PRICE = (320.0, 55.0, 90.0, 32.0, 70.0, 38.0, 18.0, 22.0)
CATEGORY_MARGIN = (0.18, 0.45, 0.35, 0.55, 0.38, 0.40, 0.22, 0.30)
CATEGORY_WEIGHT = (14, 20, 12, 10, 9, 8, 17, 10)
REGIONS = ("North", "South", "East", "West", "Central")
REGION_WEIGHT = (22, 18, 25, 23, 12)
CHANNELS = ("web", "mobile_app", "store", "marketplace")
MOBILE = CHANNELS.index("mobile_app")
PLATFORMS = ("", "ios", "android")
APP_VERSIONS = ("4.2", "4.3", "5.0", "5.1")
PRODUCTS_PER_CATEGORY = 50
CUSTOMERS = 15_000


@dataclass(frozen=True)
class SalesData:
    """Orders (one line item each), column-wise, sorted by `day`."""

    seed: int
    day: array  # day index from START_DATE
    hour: array
    customer: array
    product: array
    category: array
    region: array
    channel: array
    platform: array  # 0 unless channel is mobile_app
    app_version: array  # index into APP_VERSIONS, mobile_app only
    quantity: array
    revenue: array  # net of discount
    cost: array
    returned: array  # 1 when the order was returned
    fingerprint: str  # changes whenever the generated data would

    @property
    def orders(self) -> int:
        return len(self.day)

    def day_range(self, first: int, last: int) -> range:
        """Row indices whose day is in [first, last] (rows are sorted by day)."""
        return range(bisect_left(self.day, first), bisect_right(self.day, last))

    def rows_after(self, day: int) -> int:
        return self.orders - bisect_right(self.day, day)


def day_date(day: int) -> date:
    return START_DATE + timedelta(days=day)


def date_day(value: date) -> int:
    return (value - START_DATE).days


def _day_weights() -> list[float]:
    weights = []
    for d in range(DAYS):
        when = day_date(d)
        trend = 1.0 + 0.35 * d / DAYS
        weekly = 1.25 if when.weekday() >= 5 else 1.0
        seasonal = 1.0 + 0.25 * math.sin(2 * math.pi * (when.timetuple().tm_yday - 100) / 365)
        if (when.month == 11 and when.day >= 24) or (when.month == 12 and when.day <= 24):
            seasonal *= 1.6  # holiday peak, so that Q4 questions have an answer worth asking
        elif when.month == 1:
            seasonal *= 0.85
        weights.append(trend * weekly * seasonal)
    return weights


def generate(orders: int, seed: int) -> SalesData:
    rng = random.Random(seed)
    days = sorted(rng.choices(range(DAYS), weights=_day_weights(), k=orders))
    hour_weights = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 11, 10, 9, 9, 10, 11, 13, 14, 13, 10, 6, 3]
    hours = rng.choices(range(24), weights=hour_weights, k=orders)
    customer_weights = [1.0 / (i + 20) ** 0.7 for i in range(CUSTOMERS)]
    customers = rng.choices(range(CUSTOMERS), weights=customer_weights, k=orders)

    product_count = len(CATEGORIES) * PRODUCTS_PER_CATEGORY
    product_price = [
        round(CATEGORY_PRICE[p // PRODUCTS_PER_CATEGORY] * rng.lognormvariate(0, 0.45), 2)
        for p in range(product_count)
    ]
    product_weights = [
        CATEGORY_WEIGHT[p // PRODUCTS_PER_CATEGORY] / (1 + p % PRODUCTS_PER_CATEGORY) ** 0.6
        for p in range(product_count)
    ]
    products = rng.choices(range(product_count), weights=product_weights, k=orders)
    regions = rng.choices(range(len(REGIONS)), weights=REGION_WEIGHT, k=orders)
    quantities = rng.choices((1, 2, 3, 4, 5), weights=(55, 25, 11, 6, 3), k=orders)
    discounts = rng.choices((0.0, 0.05, 0.1, 0.2), weights=(60, 20, 14, 6), k=orders)
    draws = [rng.random() for _ in range(orders)]
    platform_draws = rng.choices((1, 2), weights=(46, 54), k=orders)
    version_draws = [rng.random() for _ in range(orders)]

    col = {
        name: array(code)
        for name, code in (
            ("category", "B"),
            ("channel", "B"),
            ("platform", "B"),
            ("app_version", "B"),
            ("revenue", "d"),
            ("cost", "d"),
            ("returned", "B"),
        )
    }
    for i in range(orders):
        d, product, qty = days[i], products[i], quantities[i]
        category = product // PRODUCTS_PER_CATEGORY
        mobile_share = 0.18 + 0.22 * d / DAYS  # the app keeps winning share
        u = draws[i]
        if u < mobile_share:
            channel = MOBILE
        elif u < mobile_share + 0.34:
            channel = 0
        elif u < mobile_share + 0.34 + 0.28:
            channel = 2
        else:
            channel = 3
        gross = product_price[product] * qty
        net = round(gross * (1 - discounts[i]), 2)
        col["category"].append(category)
        col["channel"].append(channel)
        col["platform"].append(platform_draws[i] if channel == MOBILE else 0)
        # newer app versions roll out over time
        version = min(len(APP_VERSIONS) - 1, int(version_draws[i] * 1.3 + d / DAYS * 2.7))
        col["app_version"].append(version if channel == MOBILE else 0)
        col["revenue"].append(net)
        col["cost"].append(round(gross * (1 - CATEGORY_MARGIN[category]), 2))
        # returns: Apparel comes back most; the fraction is a property of the draw
        col["returned"].append(1 if (u * 997) % 1 < (0.09 if category == 1 else 0.035) else 0)

    day_col = array("H", days)
    digest = hashlib.sha256()
    for part in (day_col, array("I", customers), array("H", products), col["revenue"]):
        digest.update(part.tobytes())
    return SalesData(
        seed=seed,
        day=day_col,
        hour=array("B", hours),
        customer=array("I", customers),
        product=array("H", products),
        region=array("B", regions),
        quantity=array("B", quantities),
        fingerprint=digest.hexdigest()[:12],
        **col,
    )
