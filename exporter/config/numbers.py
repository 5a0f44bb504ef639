"""Numbers from configuration that a float may not hold.

YAML and the environment can spell integers of any length (`above: 999...9`, 400 digits); Python
keeps them exact, and the first float() of one raises OverflowError deep in whatever uses it. The
checks here turn such a value into a message at the place it was written instead.
"""

import math

FLOAT_LIMIT = "about ±1.8e308"


def is_finite_number(value) -> bool:
    """True for a number a float holds as a finite value (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def not_finite_reason(value) -> str:
    """Why is_finite_number(value) is False, worded to follow the value as the user wrote it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"is not a finite number (too large: a threshold must be within {FLOAT_LIMIT})"
    return "is not a finite number"
