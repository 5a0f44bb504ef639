"""Numbers from text, for env vars and command-line flags alike: one parser per kind of number
and one wording per mistake, so `METRIC_THRESHOLD=inf`, `--seconds nan` and `APP_PORT=http`
are refused the same way.

And numbers already read (from YAML) that a float may not hold: YAML spells integers of any
length (`above: 999...9`, 400 digits), Python keeps them exact, and the first float() of one
raises OverflowError deep in whatever uses it; is_finite_number turns such a value into a
message at the place it was written instead."""

import argparse
import math


def parse_number(text: str) -> float:
    """A finite number: thresholds, rates, seconds. NaN and infinities are refused."""
    try:
        value = float(str(text).strip())
    except (ValueError, OverflowError):
        raise ValueError("is not a number") from None
    if not math.isfinite(value):
        raise ValueError("is not a finite number")
    return value


def parse_whole(text: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number within [minimum, maximum] where given."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError("is not a whole number") from None
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"is out of range ({minimum}-{maximum})")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}")
    return value


def flag(parse, *args):
    """An argparse `type=` from one of the parsers above, with the same message."""

    def convert(text: str):
        try:
            return parse(text, *args)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f'"{text}" {err}') from None

    convert.__name__ = parse.__name__
    return convert


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
