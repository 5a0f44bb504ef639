"""topk/bottomk among equal values (issue 14, item 18) against a real Prometheus: one page,
scraped by Prometheus and by the sidecar's Scraper into its History, the same expressions
evaluated by both; the series kept must be the same ones (Prometheus keeps them the same way
on every evaluation: its heap sees the series in the order the page first listed them)."""

import math

from exporter.core.history import History
from exporter.core.scrape import Scraper
from exporter.promql import compile_expr, evaluate
from tests.real_prometheus import real_prometheus

PAGE = (
    b'x{s="a"} 1\nx{s="b"} 1\nx{s="c"} 1\nx{s="d"} 2\n'
    b'y{s="5"} 0.5\ny{s="1"} 0\ny{s="4"} 2\ny{s="3"} NaN\ny{s="2"} 2\n'
    b'z{s="a"} 3\nz{s="b"} 3\nz{s="c"} 3\nz{s="d"} 1\n'
)
EXPRS = ["topk(2, x)", "bottomk(3, y)", "bottomk(2, z)", "topk(1, z)", "topk(3, y)", "bottomk(1, x)"]


def kept(result) -> set:
    return {dict(labels)["s"] for labels, _ in result}


def test_ties_keep_the_series_a_real_prometheus_keeps(upstream, tmp_path):
    upstream.body = PAGE
    scraper = Scraper(upstream.url, 2.0, 1 << 20)
    try:
        scraped = scraper.scrape(None)
    finally:
        scraper.close()
    assert scraped.ok, scraped.error
    history = History(retention_seconds=math.inf)
    history.record(1000.0, scraped.samples)
    ours = {expr: kept(evaluate(compile_expr(expr), history, 1000.0)) for expr in EXPRS}

    with real_prometheus(tmp_path, {"page": upstream.port}) as prometheus:
        prometheus.wait_for(lambda p: p.query("z"), "the page scraped")
        theirs: dict = {}
        seen: set = set()

        def fresh_scrape(p):
            return {r["value"][1] for r in p.query('timestamp(z{s="a"})')} - seen

        for _ in range(3):  # three evaluations over fresh scrapes: Prometheus' choice is stable
            seen.update(prometheus.wait_for(fresh_scrape, "a new scrape"))
            for expr in EXPRS:
                got = {r["metric"]["s"] for r in prometheus.query(expr)}
                assert theirs.setdefault(expr, got) == got, expr
    assert ours == theirs
    assert theirs["topk(2, x)"] == {"b", "d"}  # not the first two of the ties: the heap's choice
