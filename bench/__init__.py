"""bench — a benchmark suite for policy-gradient and preference-alignment algorithms."""

__version__ = "0.1.0"
