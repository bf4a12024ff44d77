"""slakit: deploy, tune and prove a low-latency API stack."""

__version__ = "0.1.0"
