"""Issue 14, item 13: exposition pages where the parser once disagreed with Prometheus, each
served whole by a real HTTP upstream and scraped by the real Scraper.

Prometheus' behaviour for each page: its text parser skips blanks before a sample's name; a
series printed twice is stored from its first line (the second is counted as a duplicate
sample and dropped); its OpenMetrics parser fails a page with data after `# EOF` or a line that
starts with a blank."""

import pytest

from exporter.core.scrape import UNPARSABLE, Scraper

NAMES = frozenset({"tgi_queue_size", "vllm:num_requests_waiting"})


@pytest.fixture
def scrape(upstream):
    scrapers = []

    def run(page: bytes, content_type: str = "text/plain; version=0.0.4; charset=utf-8", names=NAMES):
        upstream.body, upstream.content_type = page, content_type
        scraper = Scraper(upstream.url, 2.0, 1 << 20)
        scrapers.append(scraper)
        return scraper.scrape(names)

    yield run
    for scraper in scrapers:
        scraper.close()


@pytest.mark.parametrize("names", [NAMES, None])
def test_leading_whitespace_before_a_sample_is_read_as_prometheus_reads_it(scrape, names):
    page = b'# TYPE tgi_queue_size gauge\n   tgi_queue_size 7\n\tvllm:num_requests_waiting{model="m"} 3\n'
    result = scrape(page, names=names)
    assert result.ok, result.error
    got = {dict(labels)["__name__"]: v for labels, v in result.samples}
    assert got == {"tgi_queue_size": 7.0, "vllm:num_requests_waiting": 3.0}


@pytest.mark.parametrize("names", [NAMES, None])
def test_a_series_printed_twice_keeps_its_first_sample(scrape, names):
    page = b'tgi_queue_size 5\nvllm:num_requests_waiting{model="m"} 1\ntgi_queue_size 50\n'
    page += b'vllm:num_requests_waiting{model="m",pod=""} 9\n'  # the same series: empty label
    result = scrape(page, names=names)
    assert result.ok, result.error
    got = [(dict(labels)["__name__"], v) for labels, v in result.samples]
    assert got == [("tgi_queue_size", 5.0), ("vllm:num_requests_waiting", 1.0)]


def test_openmetrics_data_after_eof_fails_the_scrape(scrape):
    page = b"# TYPE tgi_queue_size gauge\ntgi_queue_size 5\n# EOF\ntgi_queue_size 50\n"
    result = scrape(page, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert not result.ok and result.reason == UNPARSABLE
    assert result.error == "unparsable exposition text: data after # EOF"


def test_openmetrics_page_ending_at_eof_is_fine(scrape):
    page = b"# TYPE tgi_queue_size gauge\ntgi_queue_size 5\n# EOF\n"
    result = scrape(page, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert result.ok and [v for _, v in result.samples] == [5.0]


def test_openmetrics_line_with_leading_whitespace_fails_the_scrape(scrape):
    page = b"# TYPE tgi_queue_size gauge\n tgi_queue_size 5\n# EOF\n"
    result = scrape(page, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert not result.ok and result.reason == UNPARSABLE
    assert "starts with whitespace" in result.error


def test_eof_words_inside_help_text_are_not_the_end(scrape):
    page = b"# HELP tgi_queue_size queued until # EOF of the batch\ntgi_queue_size 5\n"
    result = scrape(page)
    assert result.ok and [v for _, v in result.samples] == [5.0]
