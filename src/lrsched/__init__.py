"""lrsched: a reproducible learning-rate-schedule lab."""

# Before anything imports torch: the CPU math libraries read their settings once, at start-up.
from lrsched.core.pinning import apply_pins as _apply_pins

_apply_pins()

__version__ = "0.1.0"
