"""slakit's reference API service: retail dashboards over a tiered cache."""

__version__ = "0.1.0"
