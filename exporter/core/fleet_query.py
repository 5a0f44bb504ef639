"""One round of fleet queries against a Prometheus-compatible HTTP API (/api/v1/query).

Same hygiene as the main scrape, by the same code (core/scrape.Scraper's connection handling):
one hard deadline for the whole round (connect, headers, every body), a body cap, no redirects
(a 3xx is a failure, never followed), basic auth from URL userinfo that no message ever shows.
A round is all or nothing: if any query fails, the round fails and the sidecar decides as if
it had no fleet view, so a half-answered round can never feed the guard a count without its
total.

Answers are read as Prometheus documents them: `{"status": "success", "data": {"resultType":
"vector" | "scalar", "result": ...}}`; values are strings ("NaN", "+Inf" included). Query
`x` becomes the series `fleet:x` with the labels of each returned sample.
"""

import json
import math
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from exporter.config.fleet_config import MAX_BODY_BYTES, MAX_SERIES_PER_QUERY, SERIES_PREFIX, FleetConfig
from exporter.core.scrape import (
    CONNECTION,
    HTTP_STATUS,
    REFUSED,
    TIMEOUT,
    TOO_LARGE,
    UNPARSABLE,
    ScrapeFailure,
    Scraper,
)

# Failure reasons of a round: the scrape's, plus the API saying no and answers that cannot be
# used (a matrix, a count that is not a count). Values of llm_healthcheck_fleet_query_failures_total.
QUERY_ERROR, BAD_RESULT = "query_error", "bad_result"
FAILURE_REASONS = (REFUSED, TIMEOUT, HTTP_STATUS, TOO_LARGE, UNPARSABLE, CONNECTION, QUERY_ERROR, BAD_RESULT)


@dataclass(frozen=True)
class FleetRound:
    """The outcome of one round: every query answered (ok) or the first failure."""

    ok: bool
    number: int  # rounds since start; a new number means new answers
    time: float  # unix seconds when the round finished
    finished: float  # monotonic seconds when the round finished, for age
    duration: float = 0.0
    samples: tuple = ()  # ((labels with __name__ fleet:<query>, value), ...)
    pods: int | None = None
    unready: int | None = None
    reason: str | None = None  # one of FAILURE_REASONS when not ok
    error: str = ""


class FleetQueryFailure(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class FleetClient(Scraper):
    """The main scrape's HTTP client, pointed at the query endpoint with a new query string per
    request (the endpoint's own query string, if any, is kept in front)."""

    def __init__(self, url: str, timeout: float, clock=time.monotonic):
        super().__init__(url, timeout, MAX_BODY_BYTES, clock)
        self._headers["Accept"] = "application/json"
        parts = urlsplit(url)
        self._base_path = parts.path or "/"
        self._base_query = parts.query

    def query(self, expr: str, deadline: float) -> dict:
        """The `data` member of a successful answer; raises FleetQueryFailure otherwise."""
        left_ms = max(1, int((deadline - self._clock()) * 1000))
        # Prometheus stops evaluating at its own timeout, so a slow query frees the server too.
        # Whole milliseconds: Prometheus' durations take no fractions ("0.5s" is a 400).
        params = urlencode({"query": expr, "timeout": f"{left_ms}ms"})
        self._path = f"{self._base_path}?{self._base_query + '&' if self._base_query else ''}{params}"
        try:
            status, body = self._fetch(deadline)
        except ScrapeFailure as failure:
            self.close()
            message = str(failure).replace("scrape timed out", "query timed out")
            raise FleetQueryFailure(failure.reason, message) from None
        return _data(status, body)


def run_round(config: FleetConfig, client: FleetClient, number: int, clock) -> FleetRound:
    """Every query of `config` in turn under one deadline of config.timeout."""
    started = clock.monotonic()
    deadline = started + config.timeout
    samples: list = []
    counts: dict[str, int | None] = {}
    try:
        for name, expr in config.queries:
            try:
                found = _samples(name, client.query(expr, deadline))
                if name in ("pods", "unready"):
                    counts[name] = _count(name, found)
            except FleetQueryFailure as failure:
                raise FleetQueryFailure(failure.reason, f'query "{name}": {failure}') from None
            samples.extend(found)
        pods, unready = counts.get("pods"), counts.get("unready")
        if pods is not None and unready is not None and unready > pods:
            raise FleetQueryFailure(
                BAD_RESULT, f"unready ({unready}) is more than pods ({pods}); do they select the same pods?"
            )
    except FleetQueryFailure as failure:
        finished = clock.monotonic()
        return FleetRound(
            False, number, clock.time(), finished, finished - started, reason=failure.reason, error=str(failure)
        )
    finished = clock.monotonic()
    return FleetRound(True, number, clock.time(), finished, finished - started, tuple(samples), pods, unready)


def _data(status: int, body: bytes) -> dict:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        if not 200 <= status <= 299:
            raise FleetQueryFailure(HTTP_STATUS, _status_text(status)) from None
        raise FleetQueryFailure(UNPARSABLE, "answer is not JSON") from None
    if not isinstance(document, dict):
        raise FleetQueryFailure(UNPARSABLE, "answer is not a Prometheus API document")
    if document.get("status") == "error":
        kind, text = document.get("errorType"), document.get("error")
        raise FleetQueryFailure(QUERY_ERROR, f"{_short(kind)}: {_short(text)} (HTTP {status})")
    if not 200 <= status <= 299:
        raise FleetQueryFailure(HTTP_STATUS, _status_text(status))
    data = document.get("data")
    if document.get("status") != "success" or not isinstance(data, dict):
        raise FleetQueryFailure(UNPARSABLE, "answer is not a Prometheus API document (no status success and data)")
    return data


def _samples(name: str, data: dict) -> list:
    kind, result = data.get("resultType"), data.get("result")
    series = SERIES_PREFIX + name
    if kind == "scalar":
        return [((("__name__", series),), _value(result))]
    if kind != "vector":
        raise FleetQueryFailure(BAD_RESULT, f"returned a {_short(kind)}; write an instant query (a vector or a scalar)")
    if not isinstance(result, list):
        raise FleetQueryFailure(UNPARSABLE, "vector result is not a list")
    if len(result) > MAX_SERIES_PER_QUERY:
        raise FleetQueryFailure(
            BAD_RESULT, f"returned {len(result)} series, more than the {MAX_SERIES_PER_QUERY} a query may; aggregate it"
        )
    found = []
    for item in result:
        metric = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
            raise FleetQueryFailure(UNPARSABLE, "vector sample without a metric of string labels")
        labels = {k: v for k, v in metric.items() if k != "__name__" and v}
        labels["__name__"] = series
        found.append((tuple(sorted(labels.items())), _value(item.get("value"))))
    if len({labels for labels, _ in found}) != len(found):
        raise FleetQueryFailure(BAD_RESULT, "returned several series with the same labels")
    return found


def _value(pair) -> float:
    # [<unix seconds>, "<value>"]; the value is a string so that NaN and infinities survive JSON.
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
        raise FleetQueryFailure(UNPARSABLE, 'sample is not [time, "value"]')
    try:
        return float(pair[1])
    except ValueError:
        raise FleetQueryFailure(UNPARSABLE, f"sample value {_short(pair[1])} is not a number") from None


def _count(name: str, found: list) -> int:
    """pods and unready are one number each. unready may be empty: count() over no unready pod
    returns nothing, which means 0. pods may not: a fleet of no pods is a wrong selector."""
    if not found:
        if name == "unready":
            return 0
        raise FleetQueryFailure(BAD_RESULT, "returned nothing; pods must be one number (e.g. count(...))")
    if len(found) > 1:
        raise FleetQueryFailure(
            BAD_RESULT, f"returned {len(found)} series; {name} must be one number, wrap it in sum()"
        )
    value = found[0][1]
    if not math.isfinite(value) or value < 0 or value != round(value):
        raise FleetQueryFailure(BAD_RESULT, f"returned {value:g}; {name} must be a whole number of pods")
    if name == "pods" and value < 1:
        raise FleetQueryFailure(BAD_RESULT, "returned 0; a fleet has at least this pod, check the selector")
    return int(value)


def _status_text(status: int) -> str:
    if 300 <= status <= 399:
        return f"answered HTTP {status}, a redirect (not followed); give the final URL"
    return f"answered HTTP {status}"


def _short(text, limit: int = 200) -> str:
    text = str(text).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."
