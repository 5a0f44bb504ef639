"""Range-vector functions: one value per series from its samples in (start, end], with
Prometheus' extrapolation for rate(), increase() and delta()."""

import math
import operator
from bisect import bisect_right

from .numeric import EPS, NAN, div, kahan_inc, quantile

# --- range-vector functions: one value per series from its samples in (start, end] ---


def _extrapolated(times, values, start, end, rng, is_counter, is_rate):
    """Prometheus' extrapolatedRate for rate(), increase() and delta()."""
    n = len(values)
    if n < 2:
        return None
    result = values[-1] - values[0]
    # The common case, no reset in the window, is found by a C-level scan; only windows
    # with a reset pay for the Python loop.
    if is_counter and any(map(operator.lt, values[1:], values[:-1])):
        prev = values[0]
        for v in values[1:]:
            if v < prev:
                result += prev  # a counter reset: the value before it was lost
            prev = v
    sampled, to_start, to_end = _edges(times[0], times[-1], n, start, end)
    return result * _factor(result, values[0], sampled, to_start, to_end, rng, is_counter, is_rate)


def _edges(first_t, last_t, n, start, end):
    """The sample-time half of extrapolatedRate: the span sampled and how far to extend it."""
    to_start = first_t - start
    to_end = end - last_t
    sampled = last_t - first_t
    average = sampled / (n - 1)
    # Extrapolate to a boundary only when a sample would be expected there; otherwise
    # assume the series starts/ends half an interval beyond its first/last sample.
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if to_end >= threshold:
        to_end = average / 2
    return sampled, to_start, to_end


def _factor(result, first_v, sampled, to_start, to_end, rng, is_counter, is_rate):
    if is_counter and result > 0 and first_v >= 0:
        # A counter cannot go below zero, so never extrapolate past its zero point.
        to_zero = sampled * (first_v / result)
        if to_zero < to_start:
            to_start = to_zero
    factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor /= rng
    return factor


def extrapolated_vector(series_list, start, end, rng, is_counter, is_rate) -> list:
    """rate(), increase() or delta() of every series, read in place from the history.

    The result of `_extrapolated` over each window, without copying windows: the hot rule
    shape (a rate over every bucket of a histogram, every second) spends its time here.
    Series scraped together share one list of sample times, so the window is found and
    the time half of the extrapolation computed once for all of them."""
    out = []
    low, high = start + EPS, end + EPS
    shared = None
    lo = hi = n = 0
    sampled = to_start = to_end = base = 0.0
    for s in series_list:
        times = s.times
        if times is not shared:
            shared = times
            if not times or times[-1] <= low:
                n = 0
                continue
            lo = bisect_right(times, low)
            hi = len(times) if times[-1] <= high else bisect_right(times, high)
            n = hi - lo
            if n >= 2:
                sampled, to_start, to_end = _edges(times[lo], times[hi - 1], n, start, end)
                base = (sampled + to_start + to_end) / sampled
                if is_rate:
                    base /= rng
        if n < 2:
            continue  # fewer than two samples, staleness markers counted: nothing to extrapolate
        if s.stale or (is_counter and s.resets and s.has_reset(lo, hi)):
            window_times, window_values = s.window(start, end)
            value = _extrapolated(window_times, window_values, start, end, rng, is_counter, is_rate)
            if value is not None:
                out.append((s.labels_without_name, value))
            continue
        values = s.values
        first_v = values[lo]
        result = values[hi - 1] - first_v
        if is_counter and result > 0 and first_v >= 0 and sampled * (first_v / result) < to_start:
            out.append(
                (
                    s.labels_without_name,
                    result * _factor(result, first_v, sampled, to_start, to_end, rng, is_counter, is_rate),
                )
            )
        else:
            out.append((s.labels_without_name, result * base))
    return out


# name -> (is_counter, is_rate) of the functions extrapolated_vector computes
# Prometheus anchors predict_linear's prediction at the evaluation time even when the range
# selector has an offset (`predict_linear(x[5m] offset 1m, 60)` predicts 60 s after now, from
# data that ends a minute ago), so these get the evaluation time as `end`.
ANCHORED_AT_EVALUATION = frozenset({"predict_linear"})
EXTRAPOLATED = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}


def _rate(times, values, start, end, rng, params):
    return _extrapolated(times, values, start, end, rng, True, True)


def _increase(times, values, start, end, rng, params):
    return _extrapolated(times, values, start, end, rng, True, False)


def _delta(times, values, start, end, rng, params):
    return _extrapolated(times, values, start, end, rng, False, False)


def _instant(times, values, is_rate):
    if len(values) < 2:
        return None
    interval = times[-1] - times[-2]
    if interval == 0:
        return None
    last, prev = values[-1], values[-2]
    if is_rate and last < prev:
        result = last  # counter reset between the last two samples
    else:
        result = last - prev
    return result / interval if is_rate else result


def _irate(times, values, start, end, rng, params):
    return _instant(times, values, True)


def _idelta(times, values, start, end, rng, params):
    return _instant(times, values, False)


def _linear_regression(times, values, intercept_time):
    n = 0.0
    sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = values[0]
    const_y = True
    for i, (t, v) in enumerate(zip(times, values)):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = t - intercept_time
        sum_x, c_x = kahan_inc(x, sum_x, c_x)
        sum_y, c_y = kahan_inc(v, sum_y, c_y)
        sum_xy, c_xy = kahan_inc(x * v, sum_xy, c_xy)
        sum_x2, c_x2 = kahan_inc(x * x, sum_x2, c_x2)
    if const_y:
        if math.isinf(init_y):
            return NAN, NAN
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = div(cov_xy, var_x)
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def _deriv(times, values, start, end, rng, params):
    if len(values) < 2:
        return None
    return _linear_regression(times, values, times[0])[0]


def _predict_linear(times, values, start, end, rng, params):
    """`end` here is the evaluation time, not the window's end (see ANCHORED_AT_EVALUATION)."""
    if len(values) < 2:
        return None
    slope, intercept = _linear_regression(times, values, end)
    return slope * params[0] + intercept


def _changes(times, values, start, end, rng, params):
    changes = 0
    prev = values[0]
    for v in values[1:]:
        if v != prev and not (v != v and prev != prev):
            changes += 1
        prev = v
    return float(changes)


def _resets(times, values, start, end, rng, params):
    return float(sum(map(operator.lt, values[1:], values[:-1])))


def _avg_over_time(times, values, start, end, rng, params):
    total, count = values[0], 1.0
    mean = c = 0.0
    incremental = False
    for v in values[1:]:
        count += 1
        if not incremental:
            new_sum, new_c = kahan_inc(v, total, c)
            if not math.isinf(new_sum):
                total, c = new_sum, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = kahan_inc(v / count, q * mean, q * c)
    if incremental:
        return mean + c
    return total / count + c / count


def _sum_over_time(times, values, start, end, rng, params):
    total = c = 0.0
    for v in values:
        total, c = kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def _max_over_time(times, values, start, end, rng, params):
    best = values[0]
    for v in values:
        if v > best or best != best:
            best = v
    return best


def _min_over_time(times, values, start, end, rng, params):
    best = values[0]
    for v in values:
        if v < best or best != best:
            best = v
    return best


def _count_over_time(times, values, start, end, rng, params):
    return float(len(values))


def _last_over_time(times, values, start, end, rng, params):
    return values[-1]


def _first_over_time(times, values, start, end, rng, params):
    return values[0]


def _present_over_time(times, values, start, end, rng, params):
    return 1.0


def _variance(values):
    count = mean = c_mean = aux = c_aux = 0.0
    for v in values:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _stdvar_over_time(times, values, start, end, rng, params):
    return _variance(values)


def _stddev_over_time(times, values, start, end, rng, params):
    return math.sqrt(_variance(values))


def _quantile_over_time(times, values, start, end, rng, params):
    return quantile(params[0], values)


def _mad_over_time(times, values, start, end, rng, params):
    if any(v != v for v in values):
        return NAN  # a NaN sample poisons the result instead of being sorted away
    median = quantile(0.5, values)
    return quantile(0.5, [abs(v - median) for v in values])


# name -> (implementation, keeps the metric name, index of the range argument)
RANGE_FUNCTIONS = {
    "rate": (_rate, False, 0),
    "irate": (_irate, False, 0),
    "increase": (_increase, False, 0),
    "delta": (_delta, False, 0),
    "idelta": (_idelta, False, 0),
    "deriv": (_deriv, False, 0),
    "predict_linear": (_predict_linear, False, 0),
    "changes": (_changes, False, 0),
    "resets": (_resets, False, 0),
    "avg_over_time": (_avg_over_time, False, 0),
    "sum_over_time": (_sum_over_time, False, 0),
    "min_over_time": (_min_over_time, False, 0),
    "max_over_time": (_max_over_time, False, 0),
    "count_over_time": (_count_over_time, False, 0),
    "last_over_time": (_last_over_time, True, 0),
    "first_over_time": (_first_over_time, True, 0),
    "present_over_time": (_present_over_time, False, 0),
    "stddev_over_time": (_stddev_over_time, False, 0),
    "stdvar_over_time": (_stdvar_over_time, False, 0),
    "quantile_over_time": (_quantile_over_time, False, 1),
    "mad_over_time": (_mad_over_time, False, 0),
}
