"""The only outbound HTTP: fetch the inference server's /metrics, cap it, select, parse.

- One hard deadline covers DNS, connect, headers and the whole body, so a server that drips
  bytes cannot hold a scrape past its timeout (exporter.core.deadline_http).
- A body shorter than its Content-Length is a failed scrape, not a page.
- The body is capped; a larger one is a failure, not a memory spike.
- Only lines whose sample name a rule reads are handed to prometheus_client's parser: on a
  100 KB TGI page with 1,024-bucket histograms that is most of the cost saved. Sample names are
  matched, not family names (the parser strips `_total` from counter families).
- Empty or `null` bodies are reported as such: the seed answered Healthy to them.
"""

import base64
import http.client
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from prometheus_client.parser import text_string_to_metric_families

from exporter.core.deadline_http import (
    DeadlineExceeded,
    DeadlineHTTPConnection,
    DeadlineHTTPSConnection,
    Resolver,
)

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

# Failure reasons, also the values of llm_healthcheck_scrape_failures_total{reason}.
REFUSED, TIMEOUT, HTTP_STATUS, TOO_LARGE, UNPARSABLE, CONNECTION = (
    "refused",
    "timeout",
    "http_status",
    "too_large",
    "unparsable",
    "connection",
)
FAILURE_REASONS = (REFUSED, TIMEOUT, HTTP_STATUS, TOO_LARGE, UNPARSABLE, CONNECTION)


@dataclass(frozen=True)
class ScrapeResult:
    ok: bool
    samples: tuple = ()  # ((labels, value), ...); labels sorted, with __name__
    empty: bool = False
    reason: str | None = None  # one of FAILURE_REASONS when not ok
    error: str = ""
    duration: float = 0.0
    status: int | None = None


class ScrapeFailure(Exception):
    def __init__(self, reason: str, message: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


class Scraper:
    """Fetches one endpoint repeatedly over a kept-alive connection."""

    def __init__(self, url: str, timeout: float, max_body_bytes: int, clock=time.monotonic):
        parts = urlsplit(url)
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Accept": ACCEPT, "Accept-Encoding": "identity", "User-Agent": "llm-healthcheck"}
        if parts.username is not None:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.max_samples: int | None = None  # selected samples a page may have (the history's series cap)
        self._clock = clock
        self._resolver = Resolver()
        self._conn: DeadlineHTTPConnection | None = None

    def scrape(self, names: frozenset[str] | None) -> ScrapeResult:
        started = self._clock()
        try:
            status, body = self._fetch(started + self.timeout)
            if status < 200 or status > 299:
                raise ScrapeFailure(HTTP_STATUS, f"upstream answered HTTP {status}", status)
            if is_empty_body(body):
                return ScrapeResult(True, (), True, duration=self._clock() - started, status=status)
            samples = parse_samples(body, names, self.max_samples)
            return ScrapeResult(True, samples, duration=self._clock() - started, status=status)
        except ScrapeFailure as failure:
            self.close()
            return ScrapeResult(
                False,
                reason=failure.reason,
                error=str(failure),
                duration=self._clock() - started,
                status=failure.status,
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _fetch(self, deadline: float) -> tuple[int, bytes]:
        try:
            return self._request(deadline)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if self._conn is None or self._clock() >= deadline:
                raise ScrapeFailure(CONNECTION, "connection reset by upstream") from None
            # A kept-alive connection the server closed while idle: retry once on a new one.
            self.close()
            try:
                return self._request(deadline)
            except (http.client.HTTPException, OSError) as err:
                raise _failure_from(err) from None
        except (http.client.HTTPException, OSError) as err:
            raise _failure_from(err) from None

    def _request(self, deadline: float) -> tuple[int, bytes]:
        if self._conn is None:
            connection = DeadlineHTTPSConnection if self._https else DeadlineHTTPConnection
            self._conn = connection(self._host, self._port, self._resolver, self._clock)
        _remaining(deadline, self._clock)
        self._conn.start(deadline)  # connecting, DNS included, and every read from here on
        self._conn.request("GET", self._path, headers=self._headers)
        response = self._conn.getresponse()
        body = self._read_body(response)
        if response.will_close:
            self.close()
        return response.status, body

    def _read_body(self, response) -> bytes:
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > self.max_body_bytes:
            raise ScrapeFailure(TOO_LARGE, f"body of {length} bytes is over the {self.max_body_bytes}-byte cap")
        chunks, size = [], 0
        while True:
            chunk = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_body_bytes:
                raise ScrapeFailure(TOO_LARGE, f"body over the {self.max_body_bytes}-byte cap")
            chunks.append(chunk)
        if response.length:  # http.client ends a short Content-Length body without an error
            raise ScrapeFailure(
                CONNECTION, f"upstream closed the connection {response.length} bytes short of its Content-Length"
            )
        response.close()  # marks the response finished so the connection can be reused
        return b"".join(chunks)


def _remaining(deadline: float, clock) -> float:
    left = deadline - clock()
    if left <= 0:
        raise ScrapeFailure(TIMEOUT, "scrape timed out")
    return left


def _failure_from(err: Exception) -> ScrapeFailure:
    if isinstance(err, ScrapeFailure):
        return err
    if isinstance(err, DeadlineExceeded):
        return ScrapeFailure(TIMEOUT, str(err))
    if isinstance(err, (socket.timeout, TimeoutError)):
        return ScrapeFailure(TIMEOUT, "scrape timed out")
    if isinstance(err, ConnectionRefusedError):
        return ScrapeFailure(REFUSED, "connection refused")
    if isinstance(err, http.client.IncompleteRead):
        return ScrapeFailure(CONNECTION, "upstream closed the connection mid-body")
    if isinstance(err, (ConnectionResetError, http.client.RemoteDisconnected)):
        return ScrapeFailure(CONNECTION, "connection reset by upstream")
    return ScrapeFailure(CONNECTION, f"{type(err).__name__}: {err}".lower())


def is_empty_body(body: bytes) -> bool:
    stripped = body.strip()
    return stripped == b"" or stripped == b"null"


_NAME_START = re.compile(rb"[a-zA-Z_:#]")


def parse_samples(body: bytes, names: frozenset[str] | None, max_samples: int | None = None) -> tuple:
    """Samples whose sample name is in `names` (all when None), as ((labels, value), ...).

    Raises ScrapeFailure(UNPARSABLE) for a body that is not exposition text at all (binary,
    HTML) or whose selected lines do not parse, and ScrapeFailure(TOO_LARGE) for more than
    `max_samples` selected samples (the series the history can hold) or a label value over
    LABEL_VALUE_LIMIT_BYTES: such a page is a failed scrape with its reason, as Prometheus'
    `sample_limit` and `label_value_length_limit` make it, not a slow death by memory.

    Only sample lines are parsed, never `# TYPE` lines: prometheus_client renames the samples of
    a typed counter to `<name>_total`, while Prometheus keeps the name as exposed (TGI's
    counters have no `_total`), so rules must see the names the server printed.
    """
    first = body.lstrip()[:1]
    if not _NAME_START.match(first):
        raise ScrapeFailure(UNPARSABLE, "body is not Prometheus exposition text")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ScrapeFailure(UNPARSABLE, "body is not UTF-8 text") from None
    _check_page_as_prometheus(text)
    lines = _all_sample_lines(text) if names is None else _selected_lines(text, names)
    if max_samples is not None and len(lines) > max_samples:
        raise ScrapeFailure(
            TOO_LARGE, f"{len(lines)} samples selected, over the {max_samples} series the history can hold"
        )
    samples = []
    for line in lines:
        sample = _parse_simple(line)
        if sample is None:
            sample = _parse_with_library(line)
        if len(line) > LABEL_VALUE_LIMIT_BYTES:
            _check_label_values(sample[0])
        samples.append(sample)
    return _first_of_each_series(samples)


_EOF_LINE = re.compile(r"^# EOF[ \t]*$", re.MULTILINE)
_INDENTED_SAMPLE = re.compile(r"^[ \t]+[^ \t\n#]", re.MULTILINE)
_INDENTED_ANY = re.compile(r"^[ \t]", re.MULTILINE)
_CR_IN_SAMPLE = re.compile(r"^[^#\n][^\n]*\r", re.MULTILINE)


def _check_page_as_prometheus(text: str) -> None:
    """Fail the page where Prometheus (2.42 and 3) fails the whole scrape, though
    prometheus_client, which strips every line, would read it (checked against a real
    Prometheus in tests/test_exposition_vs_prometheus.py):

    - a sample line that starts with a blank (the blank becomes part of the metric name:
      "invalid metric name"); blank-only and indented comment lines are fine;
    - a carriage return in a sample line (`x 1\r\n`: "parsing "1\r": invalid syntax");
    - OpenMetrics (the page has a `# EOF` line): any line that starts with a blank, and any
      data after `# EOF`.

    Each test is one C-speed search over the page, and the common page has none of these."""
    eof = _EOF_LINE.search(text) if "# EOF" in text else None
    blanks = text[:1] in (" ", "\t") or "\n " in text or "\n\t" in text
    if eof is not None:
        if text[eof.end() :].strip():
            raise ScrapeFailure(UNPARSABLE, "unparsable exposition text: data after # EOF")
        if blanks and _INDENTED_ANY.search(text, 0, eof.start()):
            raise ScrapeFailure(UNPARSABLE, "unparsable exposition text: an OpenMetrics line starts with a blank")
    elif blanks and _INDENTED_SAMPLE.search(text):
        raise ScrapeFailure(UNPARSABLE, "unparsable exposition text: a sample line starts with a blank")
    if "\r" in text and _CR_IN_SAMPLE.search(text):
        raise ScrapeFailure(UNPARSABLE, "unparsable exposition text: a sample line holds a carriage return")


def _first_of_each_series(samples: list) -> tuple:
    """The page with each series once, at its first sample: a series printed twice is stored
    by Prometheus from its first line (the second is a duplicate sample for the timestamp,
    counted and dropped). Label sets equal once empty values are dropped are one series."""
    seen: set = set()
    out = []
    for sample in samples:
        labels = sample[0]
        key = labels if all(v for _, v in labels) else tuple(p for p in labels if p[1])
        if key in seen:
            continue
        seen.add(key)
        out.append(sample)
    return tuple(out)


# Prometheus' label_value_length_limit, on by default here: label values are names, ids and
# bucket bounds, and a value this long is an upstream bug that would otherwise cost memory in
# every cache and time in every regex matcher.
LABEL_VALUE_LIMIT_BYTES = 4096


def _check_label_values(labels) -> None:
    for name, value in labels:
        if len(value) > LABEL_VALUE_LIMIT_BYTES // 4 and len(value.encode("utf-8")) > LABEL_VALUE_LIMIT_BYTES:
            metric = dict(labels).get("__name__", "")
            raise ScrapeFailure(
                TOO_LARGE,
                f'label "{name}" of {metric} has a value of {len(value.encode("utf-8"))} bytes, '
                f"over the {LABEL_VALUE_LIMIT_BYTES}-byte cap",
            )


def _selected_lines(text: str, names: frozenset[str]) -> list[str]:
    """Lines that start with one of `names` followed by `{`, a blank or the line's end.

    str.find runs in C over the page once per name; on a 100 KB page with four referenced
    names that is a few tens of microseconds where a regular expression over every line costs
    close to a millisecond. A line matches at most one name: where one name is a prefix of
    another, the character after the shorter one is a name character, not a delimiter.
    """
    spans = []
    for name in names:
        if not name:
            continue
        size = len(name)
        pos = 0 if text.startswith(name) else _next_line_start(text, name, 0)
        while pos != -1:
            after = pos + size
            if after == len(text) or text[after] in _AFTER_NAME:
                end = text.find("\n", after)
                spans.append((pos, len(text) if end == -1 else end))
            pos = _next_line_start(text, name, after)
    spans.sort()
    return [text[a:b] for a, b in spans]


_AFTER_NAME = frozenset("{ \t\n")


def _next_line_start(text: str, name: str, start: int) -> int:
    found = text.find("\n" + name, start)
    return found + 1 if found != -1 else -1


def _all_sample_lines(text: str) -> list[str]:
    # Every line prometheus_client would read as a sample (it strips each line first).
    out = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            out.append(line)
    return out


# The common shape of a sample line, parsed without prometheus_client: a legacy name, optional
# plain labels (no escapes, no reserved `__` names), one space, an ASCII value and an optional
# integer timestamp. Anything else goes to prometheus_client, so its rules decide every
# unusual line; for the lines matched here the result is the same as its parser's (the fuzz
# tests compare both).
_SIMPLE_LINE = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*,?)?)\})?'
    r" ([0-9A-Za-z.+\-]+)(?: -?[0-9]+)?"
)
_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*)"')
_LABELS_CACHE: dict = {}  # (name, label text) -> sorted labels with __name__
# Bounded by the text it holds, not by entries: 1,500 new 10 kB label values a scrape once grew a
# count-bounded cache to 421 MiB. A churning page clears it; the steady one refills it in a scrape.
_LABELS_CACHE_LIMIT_BYTES = 4 << 20
_ENTRY_OVERHEAD_BYTES = 300  # the key and value tuples and the dict slot, beside the text
_labels_cache_bytes = 0


def _parse_simple(line: str):
    """((labels, value)) for a line of the common shape, or None to use the library."""
    match = _SIMPLE_LINE.fullmatch(line.strip())
    if match is None:
        return None
    name, label_text, token = match.groups()
    try:
        value = _library_value(token)
    except (ValueError, OverflowError):
        return None
    key = (name, label_text)
    labels = _LABELS_CACHE.get(key)
    if labels is None:
        pairs = _LABEL_PAIR.findall(label_text) if label_text else []
        keys = {k for k, _ in pairs}
        if len(keys) != len(pairs) or any(k.startswith("__") for k in keys):
            return None  # duplicate or reserved label names: the library's error message
        labels = tuple(sorted([*pairs, ("__name__", name)]))
        _cache_labels(key, labels)
    return labels, value


def _cache_labels(key: tuple, labels) -> None:
    global _labels_cache_bytes
    cost = _ENTRY_OVERHEAD_BYTES + 2 * (len(key[0]) + len(key[1] or ""))  # the text, and the pairs cut from it
    if _labels_cache_bytes + cost > _LABELS_CACHE_LIMIT_BYTES:
        _LABELS_CACHE.clear()  # series churn: start over rather than grow
        _labels_cache_bytes = 0
    _LABELS_CACHE[key] = labels
    _labels_cache_bytes += cost


def _library_value(token: str) -> float:
    # prometheus_client reads an integer first, then a float: `-0` is 0.0, not -0.0.
    try:
        return float(int(token))
    except ValueError:
        return float(token)


def _parse_with_library(line: str):
    try:
        samples = [sample for family in text_string_to_metric_families(line + "\n") for sample in family.samples]
        if len(samples) != 1:
            raise ValueError(f"expected one sample in {line[:80]!r}")
        sample = samples[0]
        labels = dict(sample.labels)
        labels["__name__"] = sample.name
        return tuple(sorted(labels.items())), float(sample.value)
    except (ValueError, TypeError, IndexError, OverflowError) as err:
        raise ScrapeFailure(UNPARSABLE, f"unparsable exposition text: {err}") from None
