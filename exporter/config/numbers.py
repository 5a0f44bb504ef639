"""Numbers from text, for env vars and command-line flags alike: one parser per kind of number
and one wording per mistake, so `METRIC_THRESHOLD=inf`, `--seconds nan` and `APP_PORT=http`
are refused the same way."""

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
