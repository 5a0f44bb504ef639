"""Memory is bounded by bytes whatever the upstream prints, and series churn cannot push out the
series a rule needs (issue 14, items 6 and 7). Pages beyond the caps are failed scrapes with a
reason; churn evicts the stalest series first and is counted."""

import itertools

import pytest

from exporter.core import scrape
from exporter.core.history import History
from exporter.core.memory_bounds import HISTORY_MAX_SAMPLES, series_cap
from exporter.core.scrape import LABEL_VALUE_LIMIT_BYTES, ScrapeFailure, parse_samples
from tests.support import FAST, RawUpstream, http_answer, scrape_failures

QUEUE = frozenset({"tgi_queue_size"})


def lab(**labels):
    return tuple(sorted({"__name__": "tgi_queue_size", **labels}.items()))


def test_the_label_cache_is_bounded_by_the_text_it_holds():
    # 1,500 new 3 kB label values a scrape, forty scrapes: 180 MB of label text if kept.
    for page in range(40):
        body = "".join(f'tgi_queue_size{{id="{page}-{i}-{"v" * 3000}"}} 1\n' for i in range(1500)).encode()
        assert len(parse_samples(body, QUEUE)) == 1500
        held = sum(len(name) + len(text or "") for name, text in scrape._LABELS_CACHE)
        assert held <= 4 << 20, f"label cache holds {held} bytes of text after page {page}"


def test_a_label_value_over_the_cap_fails_the_scrape_with_its_reason():
    body = b'tgi_queue_size{model="' + b"m" * (LABEL_VALUE_LIMIT_BYTES + 1) + b'"} 1\n'
    with pytest.raises(ScrapeFailure) as failure:
        parse_samples(body, QUEUE)
    assert failure.value.reason == scrape.TOO_LARGE
    assert str(failure.value) == (
        f'label "model" of tgi_queue_size has a value of {LABEL_VALUE_LIMIT_BYTES + 1} bytes, '
        f"over the {LABEL_VALUE_LIMIT_BYTES}-byte cap"
    )
    # A value at the cap, or an unselected family with a longer one, is fine.
    at_cap = b'tgi_queue_size{model="' + b"m" * LABEL_VALUE_LIMIT_BYTES + b'"} 1\n'
    other = b'other{model="' + b"m" * 50_000 + b'"} 1\n'
    assert len(parse_samples(at_cap + other, QUEUE)) == 1


def test_more_selected_samples_than_the_history_holds_fail_the_scrape():
    body = "".join(f'tgi_queue_size{{id="{i}"}} 1\n' for i in range(101)).encode()
    with pytest.raises(ScrapeFailure, match="101 samples selected, over the 100 series the history can hold"):
        parse_samples(body, QUEUE, max_samples=100)
    assert len(parse_samples(body, QUEUE, max_samples=101)) == 101


def test_the_series_cap_follows_the_sample_budget():
    assert series_cap(20_000, 120.0, 1.0) == HISTORY_MAX_SAMPLES // 122
    assert series_cap(20_000, 3660.0, 1.0) * 3662 <= HISTORY_MAX_SAMPLES
    assert series_cap(50, 120.0, 1.0) == 50  # HISTORY_MAX_SERIES still applies when lower
    assert series_cap(20_000, 3660.0, 0.001) == 1  # never zero


def test_a_page_over_the_series_cap_is_a_failed_scrape_not_a_memory_spike(start_sidecar):
    body = "".join(f'tgi_queue_size{{id="{i}"}} 1\n' for i in range(300)).encode()
    upstream = RawUpstream(http_answer(body))
    try:
        sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "HISTORY_MAX_SERIES": "200", **FAST})
        sidecar.wait_ready_to_serve()
        sidecar.wait_for(lambda: scrape_failures(sidecar.get("/metrics")[1]).get("too_large", 0) >= 1, 15, "too_large")
        status, text, _ = sidecar.get("/health?verbose")
        assert status == 503
        assert "300 samples selected, over the 200 series the history can hold" in text
    finally:
        upstream.close()


def test_churned_series_are_evicted_stalest_first_so_a_new_series_fits():
    history = History(retention_seconds=60, max_series=10)
    for t in range(5):  # churn: eight new label values every scrape, each seen once
        history.record(float(t), [(lab(id=f"{t}-{i}"), 1.0) for i in range(8)])
    assert history.series_count == 10
    history.record(5.0, [(lab(job="main"), 42.0)])
    assert history.series_count <= 10
    main = [s for s in history.series() if s.label_map.get("job") == "main"]
    assert main and main[0].values[-1] == 42.0
    assert history.evicted > 0
    # The stalest went first: what is left of the churn is the latest scrape's series.
    kept = {s.label_map["id"] for s in history.series() if "id" in s.label_map}
    assert {f"4-{i}" for i in range(8)} <= kept and len(kept) <= 9


def test_a_series_scraped_this_time_is_never_evicted_for_another():
    history = History(retention_seconds=60, max_series=4)
    history.record(0.0, [(lab(id=str(i)), 1.0) for i in range(4)])
    # 1-3 go missing in this very scrape: "new" takes the place of one of them, never of "0".
    history.record(1.0, [(lab(id="0"), 2.0), (lab(id="new"), 3.0)])
    assert {"0", "new"} <= {s.label_map["id"] for s in history.series()}
    assert history.evicted == 1 and history.series_count == 4
    # More series than fit in one page: the ones scraped are kept, the rest refused and counted.
    assert history.record(2.0, [(lab(id=str(i)), 1.0) for i in range(6)]) == 2  # six series, four fit
    assert history.series_count == 4


def test_series_churn_does_not_fail_open(start_sidecar, tmp_path):
    # A rule reads tgi_queue_size{job="main"}; the same family churns an id label every scrape.
    # Before, the churned series filled the cap and the main series was refused: no data, ready.
    counter = itertools.count()

    def churning(conn):
        n = next(counter)
        lines = [f'tgi_queue_size{{job="churn",id="{n}-{i}"}} 1' for i in range(20)]
        if n >= 5:
            lines.append('tgi_queue_size{job="main"} 100')
        body = ("\n".join(lines) + "\n").encode()
        return http_answer(body)(conn)

    rules = tmp_path / "rules.yaml"
    rules.write_text('rules:\n  - name: main_queue\n    expr: sum(tgi_queue_size{job="main"})\n    above: 10\n')
    upstream = RawUpstream(churning)
    try:
        sidecar = start_sidecar(
            {"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(rules), "HISTORY_MAX_SERIES": "60", **FAST}
        )
        sidecar.wait_ready_to_serve()
        sidecar.wait_for(lambda: sidecar.health() == 503, 15, "/health 503 once the main series is over 10")
        metrics = sidecar.get("/metrics")[1]
        evicted = next(
            line for line in metrics.splitlines() if line.startswith("llm_healthcheck_history_series_evicted")
        )
        assert float(evicted.rsplit(" ", 1)[1]) > 0
    finally:
        upstream.close()
