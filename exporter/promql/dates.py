"""The date functions (`hour`, `day_of_week`, `year`, ...) as Prometheus computes them.

Prometheus turns the sample value into `time.Unix(int64(v), 0).UTC()` and reads the field. Two
things in that chain are Go's, not the calendar's, and this module reproduces both so that every
input gives Prometheus' answer, not only dates Python's datetime can hold (years 1 to 9999):

- `int64(v)` of NaN, ±Inf or a value outside int64 is, on amd64 (the platform Prometheus is
  almost always built for), the "integer indefinite" value -2**63. So `hour(vector(NaN))` is 15,
  the hour of the instant Go's calendar arithmetic gives for that second (year 292277026596).
- Go counts seconds in uint64 from an "absolute" epoch in year -292277022399 and wraps on
  overflow; the calendar fields come from that count (time.absDate in Go up to 1.22).
"""

_DAY = 86400
_INT64_MIN = -(1 << 63)
_UINT64 = 1 << 64
# Go's time package constants: seconds from year 1 to 1970, and from the absolute epoch to year 1.
_UNIX_TO_INTERNAL = 62135596800
_INTERNAL_TO_ABSOLUTE = 730692556 * 146097 * _DAY  # 292277022400 years of 365.2425 days
_ABSOLUTE_ZERO_YEAR = -292277022399
_DAYS_400, _DAYS_100, _DAYS_4 = 365 * 400 + 97, 365 * 100 + 24, 365 * 4 + 1
_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)


def go_int64(value: float) -> int:
    """Go's int64(float64) on amd64: truncation, and -2**63 for NaN, ±Inf and out of range."""
    if value != value or not -9.223372036854775808e18 <= value < 9.223372036854775808e18:
        return _INT64_MIN
    return int(value)


def _absolute(seconds: int) -> int:
    return (seconds + _UNIX_TO_INTERNAL + _INTERNAL_TO_ABSOLUTE) % _UINT64


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _year_and_yday(absolute: int) -> tuple[int, int]:
    d = absolute // _DAY
    n = d // _DAYS_400
    y = 400 * n
    d -= _DAYS_400 * n
    n = d // _DAYS_100
    n -= n >> 2
    y += 100 * n
    d -= _DAYS_100 * n
    n = d // _DAYS_4
    y += 4 * n
    d -= _DAYS_4 * n
    n = d // 365
    n -= n >> 2
    y += n
    d -= 365 * n
    return y + _ABSOLUTE_ZERO_YEAR, d


def _month_and_day(year: int, yday: int) -> tuple[int, int]:
    day = yday
    if _is_leap(year):
        if day > 31 + 29 - 1:
            day -= 1
        elif day == 31 + 29 - 1:
            return 2, 29
    month = day // 31
    end = _DAYS_BEFORE[month + 1]
    if day >= end:
        month += 1
        begin = end
    else:
        begin = _DAYS_BEFORE[month]
    return month + 1, day - begin + 1


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and _is_leap(year):
        return 29
    return _DAYS_BEFORE[month] - _DAYS_BEFORE[month - 1]


def date_field(name: str, value: float) -> float:
    """The field `name` (a PromQL date function's name) of the sample value `value` in seconds."""
    absolute = _absolute(go_int64(value))
    if name == "hour":
        return float(absolute % _DAY // 3600)
    if name == "minute":
        return float(absolute % 3600 // 60)
    if name == "day_of_week":
        # The absolute epoch is a Monday; Go's Weekday counts Sunday as 0.
        return float((absolute + _DAY) % _UINT64 % (7 * _DAY) // _DAY)
    year, yday = _year_and_yday(absolute)
    if name == "year":
        return float(year)
    if name == "day_of_year":
        return float(yday + 1)
    month, day = _month_and_day(year, yday)
    if name == "month":
        return float(month)
    if name == "day_of_month":
        return float(day)
    if name == "days_in_month":
        return float(_days_in_month(year, month))
    raise KeyError(name)


NAMES = ("day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year")
