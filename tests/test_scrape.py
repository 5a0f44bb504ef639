"""Scraping a real loopback upstream: deadlines, caps, failure reasons, selection of families."""

import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.core import scrape
from exporter.core.scrape import Scraper, parse_samples
from tests.support import all_captures, capture, free_port


def test_only_referenced_samples_are_returned(upstream):
    upstream.body = capture("tgi-datadog-integrations-core-3.3.5.prom")
    result = Scraper(upstream.url, 2.0, 1 << 20).scrape(frozenset({"tgi_queue_size", "tgi_batch_current_size"}))
    assert result.ok and not result.empty
    assert sorted(dict(labels)["__name__"] for labels, _ in result.samples) == [
        "tgi_batch_current_size",
        "tgi_queue_size",
    ]
    assert dict(result.samples)[(("__name__", "tgi_queue_size"),)] == 0.0


def test_sends_the_text_format_accept_header(upstream):
    upstream.body = b"x 1\n"
    Scraper(upstream.url, 2.0, 1 << 20).scrape(frozenset({"x"}))
    assert upstream.accept_headers[-1].startswith("text/plain;version=0.0.4")


@pytest.mark.parametrize("path", all_captures(), ids=lambda p: p.name)
def test_selected_samples_match_a_line_by_line_parse(path):
    """Selecting lines before parsing must give exactly the samples each line holds."""
    body = path.read_bytes()
    every = {}
    for line in body.decode().splitlines():
        if line.strip() and not line.startswith("#"):
            for family in text_string_to_metric_families(line + "\n"):
                for sample in family.samples:
                    labels = tuple(sorted({**sample.labels, "__name__": sample.name}.items()))
                    every[labels] = float(sample.value)
    names = {dict(labels)["__name__"] for labels in every}
    wanted = frozenset(sorted(names)[::3])  # every third sample name
    selected = dict(parse_samples(body, wanted))
    expected = {k: v for k, v in every.items() if dict(k)["__name__"] in wanted}
    assert selected.keys() == expected.keys()
    for key, value in expected.items():
        assert selected[key] == value or (value != value and selected[key] != selected[key])


def test_samples_keep_the_name_they_were_exposed_with():
    """A counter printed without `_total` (TGI, llama.cpp) is stored under that name, as
    Prometheus stores it; prometheus_client's typed parse would rename it."""
    body = capture("llamacpp-rtx4080-notes-n_tokens_max.prom")
    samples = parse_samples(body, frozenset({"llamacpp:n_busy_slots_per_decode"}))
    assert samples == (((("__name__", "llamacpp:n_busy_slots_per_decode"),), 1.0523),)
    everything = dict(parse_samples(body, None))  # rules that cannot be narrowed see the same names
    assert everything[(("__name__", "llamacpp:n_busy_slots_per_decode"),)] == 1.0523


def test_counter_sample_names_keep_total():
    # prometheus_client names the family without `_total`; rules name the sample.
    body = b"# TYPE req counter\nreq_total 5\n"
    assert parse_samples(body, frozenset({"req_total"})) == (((("__name__", "req_total"),), 5.0),)


@pytest.mark.parametrize("body", [b"", b"null", b"null\n", b"  \n"])
def test_empty_and_null_bodies_are_reported_empty(upstream, body):
    upstream.body = body
    result = Scraper(upstream.url, 2.0, 1 << 20).scrape(frozenset({"tgi_queue_size"}))
    assert result.ok and result.empty and result.samples == ()


def test_non_2xx_is_a_failure(upstream):
    upstream.status, upstream.body = 500, b"oops"
    result = Scraper(upstream.url, 2.0, 1 << 20).scrape(None)
    assert not result.ok and result.reason == scrape.HTTP_STATUS and result.status == 500
    assert result.error == "upstream answered HTTP 500"


def test_refused_connection():
    result = Scraper(f"http://127.0.0.1:{free_port()}/metrics", 1.0, 1 << 20).scrape(None)
    assert not result.ok and result.reason == scrape.REFUSED


def test_hung_upstream_times_out_within_the_deadline(upstream):
    upstream.set_hung(True)
    result = Scraper(upstream.url, 0.3, 1 << 20).scrape(None)
    assert not result.ok and result.reason == scrape.TIMEOUT
    assert result.duration < 1.0  # the deadline bounds the whole scrape, with slack for a busy machine


def test_a_dripping_body_is_cut_by_the_whole_scrape_deadline():
    """A server that keeps sending a byte at a time never lets a per-read timeout fire."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(200):
            if stop.is_set():
                break
            try:
                conn.sendall(b"#")
            except OSError:
                break
            time.sleep(0.05)
        conn.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        result = Scraper(f"http://127.0.0.1:{listener.getsockname()[1]}/m", 0.5, 1 << 20).scrape(None)
        assert not result.ok and result.reason == scrape.TIMEOUT
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_body_over_the_cap_is_refused(upstream):
    upstream.body = b"x 1\n" * 1000
    result = Scraper(upstream.url, 2.0, 1000).scrape(None)
    assert not result.ok and result.reason == scrape.TOO_LARGE


@pytest.mark.parametrize("body", [bytes(range(256)) * 4, b"<html><body>login</body></html>", b"tgi_queue_size{ 1\n"])
def test_unparsable_bodies(upstream, body):
    upstream.body = body
    result = Scraper(upstream.url, 2.0, 1 << 20).scrape(frozenset({"tgi_queue_size"}))
    assert not result.ok and result.reason == scrape.UNPARSABLE


def test_connection_is_reused_between_scrapes(upstream):
    upstream.body = b"x 1\n"
    scraper = Scraper(upstream.url, 2.0, 1 << 20)
    for _ in range(3):
        assert scraper.scrape(frozenset({"x"})).ok
    assert upstream.requests == 3


def test_basic_auth_from_userinfo(upstream):
    seen = []
    upstream.body = b"x 1\n"
    original = upstream.server.RequestHandlerClass.do_GET

    def record(handler):
        seen.append(handler.headers.get("Authorization"))
        original(handler)

    upstream.server.RequestHandlerClass.do_GET = record
    Scraper(upstream.url.replace("http://", "http://user:p%40ss@"), 2.0, 1 << 20).scrape(None)
    assert seen == ["Basic dXNlcjpwQHNz"]  # base64 of "user:p@ss"
