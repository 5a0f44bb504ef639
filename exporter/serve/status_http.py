"""HTTP answers for `GET /` and `GET /api/v1/status`: the publisher's pre-rendered bytes plus headers.

The same answer is given three ways: by the worker's poller for a plain request (no thread,
exporter.serve.probe_worker), by the WSGI wrapper and by a Falcon route for anything else.
Only `refresh` is read from the query, as a number of seconds for a refresh tag; nothing
from a request reaches the upstream or changes what is evaluated.
"""

import falcon

from exporter.serve.status import StatusPublisher
from exporter.serve.status_page import STYLE_HASH, refresh_tag

PAGE_PATH, API_PATH = "/", "/api/v1/status"
PATHS = (PAGE_PATH, API_PATH)
MAX_REFRESH_SECONDS = 3600

# No script, no frame, no form, no request anywhere: the one stylesheet is allowed by its hash.
PAGE_CSP = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'none'; script-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_COMMON = (("cache-control", "no-store"), ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"))
HTML_HEADERS = (("content-type", "text/html; charset=utf-8"), ("content-security-policy", PAGE_CSP), *_COMMON)
JSON_HEADERS = (("content-type", "application/json"), ("content-security-policy", API_CSP), *_COMMON)
_NOT_YET = b"the status has not been rendered yet\n"


def refresh_seconds(query: str) -> int | None:
    """`refresh=N` (1..3600) from a raw query string; anything else means no refresh."""
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "refresh" and value.isdigit() and len(value) <= 4:
            seconds = int(value)
            return seconds if 1 <= seconds <= MAX_REFRESH_SECONDS else None
    return None


def status_answer(publisher: StatusPublisher, path: str, query: str = "") -> tuple:
    """(status, headers, body) for one of PATHS; the body is built from bytes only."""
    rendered = publisher.current
    if rendered is None:
        body = _NOT_YET
        return falcon.HTTP_503, (("content-type", "text/plain; charset=utf-8"), *_COMMON, _length(body)), body
    if path == API_PATH:
        body = rendered.json
        return falcon.HTTP_200, (*JSON_HEADERS, _length(body)), body
    seconds = refresh_seconds(query)
    tag = refresh_tag(seconds) if seconds else b""
    body = rendered.html_head + tag + rendered.html_rest
    return falcon.HTTP_200, (*HTML_HEADERS, _length(body)), body


def _length(body: bytes) -> tuple:
    return ("content-length", str(len(body)))


class StatusResource:
    """The Falcon route, for requests the fast paths leave to the app (HTTP/1.0, odd headers)."""

    def __init__(self, publisher: StatusPublisher, path: str):
        self._publisher, self._path = publisher, path

    def on_get(self, req, resp):
        status, headers, body = status_answer(self._publisher, self._path, req.query_string or "")
        resp.status = status
        for name, value in headers:
            if name != "content-length":
                resp.set_header(name, value)
        resp.data = body

    def on_head(self, req, resp):
        self.on_get(req, resp)


def add_status_routes(app: falcon.App, publisher: StatusPublisher) -> None:
    for path in PATHS:
        app.add_route(path, StatusResource(publisher, path))


def attach_publisher(evaluator) -> StatusPublisher:
    """A publisher fed by the evaluator: the current decision now, every published one after."""
    publisher = StatusPublisher()
    publisher.observe(evaluator.decision)
    evaluator.listeners.append(publisher.observe)
    return publisher
