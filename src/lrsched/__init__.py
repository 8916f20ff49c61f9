"""lrsched: a reproducible learning-rate-schedule lab."""

__version__ = "0.1.0"
