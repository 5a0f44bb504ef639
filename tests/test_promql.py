"""The PromQL subset as a rule author meets it: selectors, aggregation, operators,
and clear errors for everything outside the subset."""

import math
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.core.history import STALE, History
from exporter.promql import PromQLError, compile_expr, evaluate

FIXTURES = Path("/work/shared/fixtures")


def lab(name=None, **labels):
    if name is not None:
        labels["__name__"] = name
    return tuple(sorted(labels.items()))


def run(text, history, at):
    return evaluate(compile_expr(text), history, at)


def as_dict(vector):
    return {labels: value for labels, value in vector}


@pytest.fixture
def queues():
    """Two TGI pods' queues and a vLLM engine scraped every 15 s for two minutes."""
    h = History(retention_seconds=600)
    for i in range(9):
        t = i * 15.0
        h.record(
            t,
            [
                (lab("tgi_queue_size", pod="a"), float(i)),
                (lab("tgi_queue_size", pod="b"), 2.0 * i),
                (lab("vllm:num_requests_waiting", engine="0", model_name="m"), 1.0),
                (lab("vllm:num_requests_waiting", engine="1", model_name="m"), 3.0),
                (lab("requests_total", pod="a"), 10.0 * i),
            ],
        )
    return h


def capture_samples(filename):
    text = (FIXTURES / filename).read_text()
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append((tuple(sorted({**s.labels, "__name__": s.name}.items())), s.value))
    return out


# --- the seed rule and the shipped examples over real captures ---


def test_seed_rule_sums_the_tgi_queue_from_a_real_capture():
    h = History(retention_seconds=60)
    h.record(100.0, capture_samples("tgi-datadog-integrations-core-3.3.5.prom"))
    assert run("sum(tgi_queue_size)", h, 100.0) == [((), 0.0)]
    assert run("sum(tgi_queue_size) > 15", h, 100.0) == []


def test_kv_cache_rule_reads_either_vllm_name_from_a_real_capture():
    h = History(retention_seconds=60)
    h.record(5.0, capture_samples("vllm-datadog-integrations-core-v0-plus-v1-handmerged.prom"))
    result = run("max(vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)", h, 5.0)
    assert result == [((), 0.0)]
    expr = compile_expr("max(vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)")
    assert expr.metric_names == {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"}


# --- selectors ---


def test_all_four_matchers_and_anchored_regexes(queues):
    assert as_dict(run('tgi_queue_size{pod="a"}', queues, 120)) == {lab("tgi_queue_size", pod="a"): 8.0}
    assert as_dict(run('tgi_queue_size{pod!="a"}', queues, 120)) == {lab("tgi_queue_size", pod="b"): 16.0}
    # "a|x" must match the whole value: a regex that only matches a prefix selects nothing
    assert len(run('tgi_queue_size{pod=~"a|x"}', queues, 120)) == 1
    assert run('tgi_queue_size{pod=~"^"}', queues, 120) == []
    assert len(run('tgi_queue_size{pod!~"b"}', queues, 120)) == 1
    # a missing label matches the empty string
    assert len(run('tgi_queue_size{zone=""}', queues, 120)) == 2
    assert len(run('{__name__=~"tgi_.*"}', queues, 120)) == 2


def test_instant_selector_uses_the_lookback_window_and_staleness():
    h = History(retention_seconds=600)
    h.load_series(lab("up"), [(0, 1.0)])
    assert run("up", h, 299.0) == [(lab("up"), 1.0)]
    assert run("up", h, 300.0) == []  # exactly five minutes old is too old
    assert run(
        "up",
        h,
        10.0,
    ) == [(lab("up"), 1.0)]
    h.load_series(lab("up"), [(20, STALE)])
    assert run("up", h, 20.0) == []
    assert run("up", h, 19.0) == [(lab("up"), 1.0)]
    assert evaluate(compile_expr("up"), h, 100.0, lookback=30.0) == []


def test_offset_reads_the_past(queues):
    assert as_dict(run('tgi_queue_size{pod="a"} offset 30s', queues, 120)) == {lab("tgi_queue_size", pod="a"): 6.0}


# --- aggregation ---


def test_sum_max_min_avg_count_by_and_without(queues):
    assert run("sum(tgi_queue_size)", queues, 120) == [((), 24.0)]
    assert as_dict(run("max by (pod) (tgi_queue_size)", queues, 120)) == {lab(pod="a"): 8.0, lab(pod="b"): 16.0}
    assert run("min(tgi_queue_size)", queues, 120) == [((), 8.0)]
    assert run("avg(tgi_queue_size)", queues, 120) == [((), 12.0)]
    assert run("count(tgi_queue_size)", queues, 120) == [((), 2.0)]
    # vLLM's engine label summed away, the model kept
    assert run("sum without (engine) (vllm:num_requests_waiting)", queues, 120) == [(lab(model_name="m"), 4.0)]
    assert run("sum by (model_name) (vllm:num_requests_waiting)", queues, 120) == [(lab(model_name="m"), 4.0)]


def test_aggregating_nothing_gives_nothing(queues):
    assert run("sum(does_not_exist)", queues, 120) == []
    assert run("count(does_not_exist)", queues, 120) == []


def test_topk_quantile_stddev_group_and_count_values(queues):
    assert run("topk(1, tgi_queue_size)", queues, 120) == [(lab("tgi_queue_size", pod="b"), 16.0)]
    assert run("bottomk(1, tgi_queue_size)", queues, 120) == [(lab("tgi_queue_size", pod="a"), 8.0)]
    assert run("quantile(0.5, tgi_queue_size)", queues, 120) == [((), 12.0)]
    assert run("stddev(tgi_queue_size)", queues, 120) == [((), 4.0)]
    assert run("stdvar(tgi_queue_size)", queues, 120) == [((), 16.0)]
    assert run("group(tgi_queue_size)", queues, 120) == [((), 1.0)]
    assert as_dict(run('count_values("n", vllm:num_requests_waiting)', queues, 120)) == {
        lab(n="1"): 1.0,
        lab(n="3"): 1.0,
    }


# --- operators ---


def test_arithmetic_with_scalars_drops_the_name(queues):
    result = as_dict(run("tgi_queue_size * 2 + 1", queues, 120))
    assert result == {lab(pod="a"): 17.0, lab(pod="b"): 33.0}
    assert run("1 + 2 * 3 ^ 2", queues, 0) == 19.0
    assert run("-sum(tgi_queue_size)", queues, 120) == [((), -24.0)]


def test_division_by_zero_gives_ieee_values_not_a_crash(queues):
    result = as_dict(run("tgi_queue_size / 0", queues, 120))
    assert result[lab(pod="a")] == math.inf
    assert math.isnan(as_dict(run("tgi_queue_size{pod='a'} * 0 / 0", queues, 120))[lab(pod="a")])
    assert math.isnan(run("0 % 0", queues, 0))


def test_comparison_filters_and_keeps_the_name_bool_gives_zero_or_one(queues):
    assert run("tgi_queue_size > 10", queues, 120) == [(lab("tgi_queue_size", pod="b"), 16.0)]
    assert as_dict(run("tgi_queue_size > bool 10", queues, 120)) == {lab(pod="a"): 0.0, lab(pod="b"): 1.0}
    assert run("sum(tgi_queue_size) > 100", queues, 120) == []
    # scalar on the left: the vector's value is kept
    assert run("10 < tgi_queue_size", queues, 120) == [(lab("tgi_queue_size", pod="b"), 16.0)]
    assert run("2 > bool 1", queues, 0) == 1.0


def test_vector_matching_one_to_one_with_on_and_ignoring():
    h = History(retention_seconds=600)
    h.record(
        0,
        [
            (lab("running", pod="a", ver="1"), 3.0),
            (lab("running", pod="b", ver="1"), 5.0),
            (lab("capacity", pod="a"), 4.0),
            (lab("capacity", pod="b"), 10.0),
        ],
    )
    ratio = as_dict(run("running / on(pod) capacity", h, 0))
    assert ratio == {lab(pod="a"): 0.75, lab(pod="b"): 0.5}
    ratio = as_dict(run("running / ignoring(ver) capacity", h, 0))
    assert ratio == {lab(pod="a"): 0.75, lab(pod="b"): 0.5}
    # no match without on/ignoring: the label sets differ
    assert run("running / capacity", h, 0) == []
    assert run("running > on(pod) capacity", h, 0) == []
    assert as_dict(run("capacity > on(pod) running", h, 0)) == {lab(pod="a"): 4.0, lab(pod="b"): 10.0}


def test_many_to_one_needs_group_left():
    h = History(retention_seconds=600)
    h.record(
        0,
        [
            (lab("req", pod="a", code="200"), 3.0),
            (lab("req", pod="a", code="500"), 1.0),
            (lab("info", pod="a", node="n1"), 1.0),
        ],
    )
    with pytest.raises(PromQLError, match="many-to-one matching must be explicit"):
        run("req * on(pod) info", h, 0)
    result = as_dict(run("req * on(pod) group_left(node) info", h, 0))
    assert result == {lab(pod="a", code="200", node="n1"): 3.0, lab(pod="a", code="500", node="n1"): 1.0}


def test_set_operators(queues):
    assert len(run("tgi_queue_size or vllm:num_requests_waiting", queues, 120)) == 4
    assert run("sum(tgi_queue_size) > 0 and sum(requests_total) == 0", queues, 120) == []
    assert run("sum(tgi_queue_size) > 0 and sum(requests_total) > 0", queues, 120) == [((), 24.0)]
    assert run('tgi_queue_size unless tgi_queue_size{pod="a"}', queues, 120) == [(lab("tgi_queue_size", pod="b"), 16.0)]
    assert run("tgi_queue_size and on() vector(1)", queues, 120) != []


def test_name_collisions_are_errors_as_in_prometheus():
    h = History(retention_seconds=600)
    h.record(0, [(lab("a", pod="x"), 1.0), (lab("b", pod="x"), 2.0)])
    with pytest.raises(PromQLError, match="same labelset"):
        run('{__name__=~"a|b"} * 2', h, 0)
    with pytest.raises(PromQLError, match="same labelset"):
        run('-{__name__=~"a|b"}', h, 0)


# --- functions ---


def test_rate_and_increase_extrapolate_like_prometheus(queues):
    # 10 per 15 s, samples cover the whole window: exactly 2/3 per second
    assert run("rate(requests_total[1m])", queues, 120) == [(lab(pod="a"), pytest.approx(10 / 15))]
    assert run("increase(requests_total[1m])", queues, 120) == [(lab(pod="a"), pytest.approx(40.0))]


def test_rate_handles_a_counter_reset():
    h = History(retention_seconds=600)
    h.load_series(lab("c_total"), [(0, 10.0), (10, 20.0), (20, 5.0), (30, 15.0)])
    # +10, then a reset to 5 (counted as +5), then +10: 25 over 30 s sampled, and the
    # first sample sits one interval after the window start, so it extrapolates 10 s back
    [(labels, value)] = run("increase(c_total[40s])", h, 30)
    assert labels == ()
    assert value == pytest.approx(25 * (30 + 10) / 30)


def test_rate_never_extrapolates_a_counter_below_zero():
    h = History(retention_seconds=600)
    h.load_series(lab("c_total"), [(10, 1.0), (20, 11.0), (30, 21.0)])
    # the gap to the window start (20 s) is too long, so half an interval (5 s) would be
    # added; but the counter was at zero only 1 s before its first sample
    assert run("increase(c_total[40s])", h, 30) == [((), pytest.approx(21.0))]


def test_over_time_functions_and_instant_rates():
    h = History(retention_seconds=600)
    h.load_series(lab("g"), [(0, 1.0), (10, 5.0), (20, 3.0)])
    assert run("max_over_time(g[30s])", h, 20) == [((), 5.0)]
    assert run("min_over_time(g[30s])", h, 20) == [((), 1.0)]
    assert run("avg_over_time(g[30s])", h, 20) == [((), 3.0)]
    assert run("count_over_time(g[30s])", h, 20) == [((), 3.0)]
    assert run("last_over_time(g[30s])", h, 20) == [(lab("g"), 3.0)]
    assert run("idelta(g[30s])", h, 20) == [((), -2.0)]
    assert run("irate(g[30s])", h, 20) == [((), 0.3)]  # a drop is a counter reset for irate
    assert run("changes(g[30s])", h, 20) == [((), 2.0)]
    assert run("resets(g[30s])", h, 20) == [((), 1.0)]
    assert run("deriv(g[30s])", h, 20) == [((), pytest.approx(0.1))]


def test_absent_scalar_vector_time_and_clamp(queues):
    assert run('absent(nope{job="x"})', queues, 120) == [(lab(job="x"), 1.0)]
    assert run("absent(tgi_queue_size)", queues, 120) == []
    assert run('scalar(tgi_queue_size{pod="a"})', queues, 120) == 8.0
    assert math.isnan(run("scalar(tgi_queue_size)", queues, 120))
    assert run("vector(3)", queues, 120) == [((), 3.0)]
    assert run("time()", queues, 120) == 120.0
    assert as_dict(run("clamp_max(tgi_queue_size, 10)", queues, 120)) == {lab(pod="a"): 8.0, lab(pod="b"): 10.0}


def test_histogram_quantile_over_classic_buckets():
    h = History(retention_seconds=600)
    for t, counts in [(0, (0, 0, 0)), (30, (50, 90, 100)), (60, (100, 180, 200))]:
        h.record(
            float(t),
            [
                (lab("ttft_bucket", le="0.5"), float(counts[0])),
                (lab("ttft_bucket", le="1"), float(counts[1])),
                (lab("ttft_bucket", le="+Inf"), float(counts[2])),
            ],
        )
    expr = "histogram_quantile(0.95, sum by (le) (rate(ttft_bucket[1m])))"
    # rank 95 of 100 per window falls past the last finite bucket: its bound is reported
    assert run(expr, h, 60) == [((), 1.0)]
    assert run("histogram_quantile(0.5, sum by (le) (rate(ttft_bucket[1m])))", h, 60) == [((), pytest.approx(0.5))]


# --- the subset boundary ---


@pytest.mark.parametrize(
    "text, message",
    [
        ("rate(x[5m])[10m:1m]", "subqueries are not supported"),
        ('label_replace(x, "a", "b", "c", "d")', 'function "label_replace" is not supported'),
        ("x @ 100", 'the "@" modifier is not supported'),
        ("x[5m]", "range vector results are not supported"),
        ('"text"', "string results are not supported"),
        ("limitk(1, x)", 'aggregation "limitk" is not supported'),
        ("sum(x", "parse error:"),
        ("", "empty expression"),
        ('x{a=~"("}', "parse error:"),
        ("+".join(["x"] * 3000), "longer than 4096 characters"),
        ("+".join(["x"] * 1500), "nested too deeply"),
    ],
)
def test_outside_the_subset_is_a_clear_error(text, message):
    with pytest.raises(PromQLError) as err:
        compile_expr(text)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value) and len(str(err.value)) < 300


def test_compiled_facts_for_the_engine():
    e = compile_expr("histogram_quantile(0.95, sum by (le) (rate(x_bucket[1m]))) > 2 and on() up offset 2m")
    assert e.metric_names == {"x_bucket", "up"}
    assert e.max_range_seconds == 120.0
    assert e.value_type == "vector"
    assert compile_expr("1 + 1").value_type == "scalar"
    assert compile_expr('{job="x"}').metric_names is None
    assert compile_expr("rate(x[5m] offset 1m)").max_range_seconds == 360.0


def test_histogram_quantile_zero_over_an_empty_first_bucket_is_nan():
    """Prometheus answers NaN here (rank 0 in an empty first bucket); it must not raise."""
    from exporter.core.history import History

    history = History(600)
    for t in range(0, 61, 15):
        history.record(
            float(t),
            [
                ((("__name__", "h_bucket"), ("le", "1")), 0.0),
                ((("__name__", "h_bucket"), ("le", "+Inf")), float(t)),
            ],
        )
    result = evaluate(compile_expr("histogram_quantile(0, sum by (le) (rate(h_bucket[1m])))"), history, 60.0)
    assert len(result) == 1 and math.isnan(result[0][1])
