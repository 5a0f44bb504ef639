"""Issue 14, item 13: exposition pages where the parser once disagreed with Prometheus, each
served whole by a real HTTP upstream and scraped by the real Scraper.

Prometheus' behaviour for each page (seen with a real Prometheus 2.42 in
tests/test_exposition_vs_prometheus.py): a sample line that starts with a blank or holds a
carriage return fails the whole scrape; a series printed twice is stored from its first line
(the second is a duplicate sample, dropped); its OpenMetrics parser fails a page with data after
`# EOF` or any line that starts with a blank."""

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
@pytest.mark.parametrize(
    "page",
    [
        b"# TYPE tgi_queue_size gauge\n   tgi_queue_size 7\n",
        b'tgi_queue_size 1\n\tvllm:num_requests_waiting{model="m"} 3\n',
        b"tgi_queue_size 1\n  tgi_some_family_no_rule_reads 3\n",
    ],
)
def test_a_sample_line_starting_with_a_blank_fails_the_scrape_as_in_prometheus(scrape, names, page):
    result = scrape(page, names=names)
    assert not result.ok and result.reason == UNPARSABLE
    assert result.error == "unparsable exposition text: a sample line starts with a blank"


def test_blank_only_and_indented_comment_lines_are_fine(scrape):
    result = scrape(b"  # HELP tgi_queue_size queue\ntgi_queue_size 6\n   \n\t\n")
    assert result.ok and [v for _, v in result.samples] == [6.0]


def test_a_carriage_return_in_a_sample_line_fails_the_scrape(scrape):
    result = scrape(b"tgi_queue_size 2\r\n")
    assert not result.ok and result.error == "unparsable exposition text: a sample line holds a carriage return"


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
    assert result.error == "unparsable exposition text: an OpenMetrics line starts with a blank"


def test_eof_words_inside_help_text_are_not_the_end(scrape):
    page = b"# HELP tgi_queue_size queued until # EOF of the batch\ntgi_queue_size 5\n"
    result = scrape(page)
    assert result.ok and [v for _, v in result.samples] == [5.0]
