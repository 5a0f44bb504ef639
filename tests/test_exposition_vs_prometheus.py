"""The exposition edge cases of issue 14 (item 13), each page served by its own real upstream and
scraped by a real Prometheus and by the sidecar's Scraper: both must agree on whether the page
is usable and on the value a rule reads."""

import pytest

from exporter.core.scrape import Scraper
from tests.real_prometheus import real_prometheus
from tests.support import Upstream

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PAGES = {
    "indented": (TEXT, b"# TYPE tgi_queue_size gauge\n   tgi_queue_size 7\n"),
    "twice": (TEXT, b"# TYPE tgi_queue_size gauge\ntgi_queue_size 5\ntgi_queue_size 50\n"),
    "after_eof": (OPENMETRICS, b"# TYPE tgi_queue_size gauge\ntgi_queue_size 5\n# EOF\ntgi_queue_size 50\n"),
    "om_indented": (OPENMETRICS, b"# TYPE tgi_queue_size gauge\n tgi_queue_size 5\n# EOF\n"),
    "om_plain": (OPENMETRICS, b"# TYPE tgi_queue_size gauge\ntgi_queue_size 4\n# EOF\n"),
    "other_indented": (TEXT, b"tgi_queue_size 3\n  tgi_other 1\n"),  # a family no rule reads
    "crlf": (TEXT, b"tgi_queue_size 2\r\n"),
    "indented_comment": (TEXT, b"  # HELP tgi_queue_size queue\ntgi_queue_size 6\n   \n"),
    "om_blank_line": (OPENMETRICS, b"tgi_queue_size 8\n   \n# EOF\n"),
}


@pytest.fixture
def upstreams():
    servers = {}
    for job, (content_type, body) in PAGES.items():
        server = Upstream()
        server.body, server.content_type = body, content_type
        servers[job] = server
    yield servers
    for server in servers.values():
        server.close()


def ours(url: str):
    scraper = Scraper(url, 2.0, 1 << 20)
    try:
        result = scraper.scrape(frozenset({"tgi_queue_size"}))
    finally:
        scraper.close()
    if not result.ok:
        return 0.0, None
    return 1.0, next((v for _, v in result.samples), None)


def test_each_page_reads_as_a_real_prometheus_reads_it(upstreams, tmp_path):
    with real_prometheus(tmp_path, {job: server.port for job, server in upstreams.items()}) as prometheus:

        def all_up(p):
            up = {r["metric"]["job"]: float(r["value"][1]) for r in p.query("up")}
            return up if len(up) == len(PAGES) else None

        up = prometheus.wait_for(all_up, "every target scraped")
        values = {r["metric"]["job"]: float(r["value"][1]) for r in prometheus.query("tgi_queue_size")}
        theirs = {job: (up[job], values.get(job)) for job in PAGES}
    mine = {job: ours(server.url) for job, server in upstreams.items()}
    assert mine == theirs
    # And what that is, so a change on either side shows here:
    assert theirs == {
        "indented": (0.0, None),  # "invalid metric name": the blanks become part of the name
        "twice": (1.0, 5.0),
        "after_eof": (0.0, None),
        "om_indented": (0.0, None),
        "om_plain": (1.0, 4.0),
        "other_indented": (0.0, None),
        "crlf": (0.0, None),
        "indented_comment": (1.0, 6.0),
        "om_blank_line": (0.0, None),
    }
