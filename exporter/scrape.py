"""The only outbound HTTP: fetch the inference server's /metrics, cap it, select, parse.

- One hard deadline covers connect, headers and the whole body, so a server that drips bytes
  cannot hold a scrape past its timeout.
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
import ssl
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from prometheus_client.parser import text_string_to_metric_families

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

# Failure reasons, also the values of llm_healthcheck_scrape_failures_total{reason}.
REFUSED, TIMEOUT, HTTP_STATUS, TOO_LARGE, UNPARSABLE, CONNECTION = (
    "refused", "timeout", "http_status", "too_large", "unparsable", "connection")
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
        self._headers = {"Accept": ACCEPT, "Accept-Encoding": "identity",
                         "User-Agent": "llm-healthcheck"}
        if parts.username is not None:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self._conn = None

    def scrape(self, names: frozenset[str] | None) -> ScrapeResult:
        started = self._clock()
        try:
            status, body = self._fetch(started + self.timeout)
            if status < 200 or status > 299:
                raise ScrapeFailure(HTTP_STATUS, f"upstream answered HTTP {status}", status)
            if is_empty_body(body):
                return ScrapeResult(True, (), True, duration=self._clock() - started, status=status)
            samples = parse_samples(body, names)
            return ScrapeResult(True, samples, duration=self._clock() - started, status=status)
        except ScrapeFailure as failure:
            self.close()
            return ScrapeResult(False, reason=failure.reason, error=str(failure),
                                duration=self._clock() - started, status=failure.status)

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
            remaining = _remaining(deadline, self._clock)
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=remaining,
                                                         context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=remaining)
            self._conn.connect()
        sock = self._conn.sock
        sock.settimeout(_remaining(deadline, self._clock))
        self._conn.request("GET", self._path, headers=self._headers)
        response = self._conn.getresponse()
        body = self._read_body(response, sock, deadline)
        if response.will_close:
            self.close()
        return response.status, body

    def _read_body(self, response, sock, deadline: float) -> bytes:
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > self.max_body_bytes:
            raise ScrapeFailure(TOO_LARGE, f"body of {length} bytes is over the "
                                           f"{self.max_body_bytes}-byte cap")
        chunks, size = [], 0
        while True:
            sock.settimeout(_remaining(deadline, self._clock))
            chunk = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_body_bytes:
                raise ScrapeFailure(TOO_LARGE, f"body over the {self.max_body_bytes}-byte cap")
            chunks.append(chunk)
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


def parse_samples(body: bytes, names: frozenset[str] | None) -> tuple:
    """Samples whose sample name is in `names` (all when None), as ((labels, value), ...).

    Raises ScrapeFailure(UNPARSABLE) for a body that is not exposition text at all (binary,
    HTML) or whose selected lines do not parse.
    """
    first = body.lstrip()[:1]
    if not _NAME_START.match(first):
        raise ScrapeFailure(UNPARSABLE, "body is not Prometheus exposition text")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ScrapeFailure(UNPARSABLE, "body is not UTF-8 text") from None
    selected = select_lines(text, names)
    if not selected:
        return ()
    try:
        samples = []
        for family in text_string_to_metric_families(selected):
            for sample in family.samples:
                labels = dict(sample.labels)
                labels["__name__"] = sample.name
                samples.append((tuple(sorted(labels.items())), float(sample.value)))
        return tuple(samples)
    except (ValueError, TypeError, IndexError) as err:
        raise ScrapeFailure(UNPARSABLE, f"unparsable exposition text: {err}") from None


_SELECTORS: dict = {}


def select_lines(text: str, names: frozenset[str] | None) -> str:
    """The sample lines of `names`, comments dropped; the whole text when names is None."""
    if names is None:
        return text
    if not names:
        return ""
    pattern = _SELECTORS.get(names)
    if pattern is None:
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        pattern = re.compile(rf"^(?:{alternatives})(?:[{{ \t].*)?$", re.M)
        if len(_SELECTORS) > 64:
            _SELECTORS.clear()
        _SELECTORS[names] = pattern
    lines = pattern.findall(text)
    return "\n".join(lines) + "\n" if lines else ""
