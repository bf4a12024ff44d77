"""Request bodies. Strict: a wrong type is a 422, never coerced."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class TokenRequest(Strict):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class AIQuery(Strict):
    query: str = Field(min_length=1, max_length=1000)
    # issued by the server on the first query (absent); a later query sends it back
    session_id: str | None = Field(default=None, pattern=SESSION_PATTERN)


class InsightRequest(Strict):
    data_source: Literal["sales", "customers", "products", "mobile"] = "sales"
    insight_type: Literal[
        "trend_analysis", "anomaly_detection", "forecast", "segmentation", "top_performers"
    ]
    time_range: Literal[
        "last_7_days",
        "last_30_days",
        "last_90_days",
        "last_365_days",
        "year_to_date",
        "quarter_to_date",
    ] = "last_30_days"


class WarmRequest(Strict):
    force: bool = False  # recompute every view even when fresh


class ScaleRequest(Strict):
    action: Literal["auto", "up", "down"] = "auto"
    reason: str = Field(default="", max_length=200)


class LedgerEntry(Strict):
    run: str = Field(pattern=SESSION_PATTERN)  # the drill's run: one ledger each
    id: str = Field(pattern=SESSION_PATTERN)  # unique within the run
