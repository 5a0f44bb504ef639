"""Four answers that once differed from Prometheus (issue 14, items 15-18), each checked with
the exact input and the answer Prometheus gives (worked through its Go code; every value here
was also confirmed with promtool 2.42, except the tie choices, which promtool makes at random:
it loads a test's series from a Go map)."""

import math

from exporter.core.history import History
from exporter.promql import compile_expr, evaluate


def _eval(expr: str, at: float, series: dict) -> dict:
    history = History(retention_seconds=math.inf)
    for labels, samples in series.items():
        history.load_series(labels, samples)
    return {labels: value for labels, value in evaluate(compile_expr(expr), history, at)}


def _x(**labels) -> tuple:
    return (("__name__", "x"), *sorted(labels.items()))


def test_predict_linear_with_offset_predicts_from_the_evaluation_time():
    # x grows 1 per minute: 0 at 0s ... 10 at 600s. At 600s with offset 1m the window holds
    # 60..300 s of data (values 1..5, slope 1/60). Prometheus anchors the line at the
    # evaluation time (600 s, where the line is at 10) and predicts 60 s further: 11.
    # Anchored at 540 s (eval time - offset) the answer would be 10.
    samples = [(60.0 * i, float(i)) for i in range(11)]
    got = _eval("predict_linear(x[5m] offset 1m, 60)", 600, {_x(): samples})
    assert got == {(): 11.0}


def test_histogram_quantile_with_a_nan_bucket_follows_the_binary_search():
    # Counts 1, NaN, 5, 8, 10 at le 1, 2, 4, 8, +Inf (promtool 2.42 gives NaN, then 8).
    buckets = {"1": 1.0, "2": math.nan, "4": 5.0, "8": 8.0, "+Inf": 10.0}
    series = {(("__name__", "h_bucket"), ("le", le)): [(0.0, c)] for le, c in buckets.items()}
    # rank 1: a linear scan stops at le=1 (1 >= 1) and answers 1.0; the binary search probes
    # index 2 (5 >= 1: left), then index 1 (NaN >= 1 is false: right) and ends at index 2,
    # the bucket (2, 4] whose lower count is NaN, so Prometheus answers NaN.
    got = _eval("histogram_quantile(0.1, h_bucket)", 30, series)
    assert math.isnan(got[()])
    # A NaN total: every comparison with the NaN rank is false, so the search ends in the
    # +Inf bucket and Prometheus answers the second-highest bound (8), not NaN.
    series[(("__name__", "h_bucket"), ("le", "+Inf"))] = [(0.0, math.nan)]
    assert _eval("histogram_quantile(0.5, h_bucket)", 30, series) == {(): 8.0}


def test_date_functions_of_nan_and_inf_give_what_prometheus_gives():
    # Prometheus: time.Unix(int64(v), 0).UTC(); int64 of NaN/±Inf on amd64 is -2**63, which
    # Go's calendar puts at 292277026596-12-04 15:30:08 UTC (a Sunday). promtool 2.42 agrees.
    expected = {
        "hour": 15,
        "minute": 30,
        "day_of_week": 0,
        "day_of_month": 4,
        "day_of_year": 339,
        "days_in_month": 31,
        "month": 12,
        "year": 292277026596,
    }
    for value in ("NaN", "Inf", "-Inf", "1e19"):
        for fn, want in expected.items():
            got = _eval(f"{fn}(vector({value}))", 0, {})
            assert got == {(): float(want)}, (fn, value)


def test_date_functions_beyond_year_9999_are_real_dates():
    # 1e12 s is 33658-09-27 01:46:40 UTC; -1e12 s is -29719-04-05 22:13:20 UTC (proleptic).
    assert _eval("year(vector(1e12))", 0, {}) == {(): 33658.0}
    assert _eval("day_of_month(vector(1e12))", 0, {}) == {(): 27.0}
    assert _eval("hour(vector(-1e12))", 0, {}) == {(): 22.0}
    assert _eval("year(vector(-1e12))", 0, {}) == {(): -29719.0}


def test_topk_among_ties_keeps_the_series_prometheus_heap_keeps():
    # Series in first-seen order a, b, c (all 1) then d (2). Prometheus' topk(2) heap holds
    # [a, b]; c does not beat the root; d replaces the root a and sifts down past b.
    # Kept: b and d. A stable sort would keep a and d.
    series = {_x(s=name): [(0.0, v)] for name, v in (("a", 1.0), ("b", 1.0), ("c", 1.0), ("d", 2.0))}
    got = _eval("topk(2, x)", 30, series)
    assert set(got) == {_x(s="b"), _x(s="d")}


def test_bottomk_among_ties_keeps_the_series_prometheus_heap_keeps():
    # 0.5, 0, 2 (a4), NaN, 2 (a2): the heap [a4, a1, a5] keeps a4; the later 2 does not
    # beat an equal root. Same answer the heap gives with NaN in the middle.
    order = (("5", 0.5), ("1", 0.0), ("4", 2.0), ("3", math.nan), ("2", 2.0))
    series = {_x(a=name): [(0.0, v)] for name, v in order}
    assert set(_eval("bottomk(3, x)", 30, series)) == {_x(a="5"), _x(a="1"), _x(a="4")}
    # Three equal values then a smaller one: bottomk(2) replaces the root (the first) and
    # sifts it down, keeping the second and the new one.
    series = {_x(s=name): [(0.0, v)] for name, v in (("a", 3.0), ("b", 3.0), ("c", 3.0), ("d", 1.0))}
    assert set(_eval("bottomk(2, x)", 30, series)) == {_x(s="b"), _x(s="d")}
