"""Is this request head exactly a plain readiness probe (`GET|HEAD /health HTTP/1.1` with
nothing unusual about it)? Then the worker answers it from its poller without a thread.

Anything else (a body, pipelined bytes, HTTP/1.0, a query string, a JSON Accept, an odd
header, gunicorn's limits reached) goes to gunicorn and the Falcon app, which answer it with
the same rulebook (exporter.serve.app.HealthResource).
"""

import re

from exporter.serve import probe_answer

_PROBE_LINE = re.compile(
    ("(?:" + "|".join(probe_answer.METHODS) + ") " + re.escape(probe_answer.PATH) + r" HTTP/1\.1").encode()
)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[\x20-\x7e\t]*")
_NOT_PLAIN = (b"transfer-encoding", b"expect", b"upgrade", b"http2-settings")
# The status page is answered the same way, from pre-rendered bytes (exporter.serve.status_http).
_PAGE_LINE = re.compile(rb"(GET|HEAD) (/|/api/v1/status|/\?refresh=[0-9]{1,4}) HTTP/1\.1")


def plain_probe(head: bytes, max_fields: int = 100, max_field_size: int = 8190) -> bool | None:
    """For a request head that is exactly a plain probe, whether the connection stays open
    after the answer; None for anything else (a body, pipelined bytes, HTTP/1.0, a query
    string, a JSON Accept, an odd header, gunicorn's limits reached), which gunicorn and the
    app then handle."""
    found = _plain_head(head, _PROBE_LINE, max_fields, max_field_size, probe=True)
    return None if found is None else found[1]


def plain_page(head: bytes, max_fields: int = 100, max_field_size: int = 8190) -> tuple | None:
    """The same test for the status page and its JSON (`GET|HEAD /`, `/?refresh=N`,
    `/api/v1/status`): (path, query, keep_alive), or None to leave the request to gunicorn."""
    found = _plain_head(head, _PAGE_LINE, max_fields, max_field_size, probe=False)
    if found is None:
        return None
    path, _, query = found[0].group(2).decode().partition("?")
    return path, query, found[1]


def _plain_head(head: bytes, pattern: re.Pattern, max_fields: int, max_field_size: int, probe: bool):
    if len(head) > 8192 or head.find(b"\r\n\r\n") != len(head) - 4:
        return None
    request_line, _, fields = head[:-4].partition(b"\r\n")
    match = pattern.fullmatch(request_line)
    if not match:
        return None
    lines = fields.split(b"\r\n") if fields else []
    if max_fields and len(lines) > max_fields:
        return None
    keep_alive = True
    for line in lines:
        if max_field_size and len(line) > max_field_size:
            return None
        name, colon, value = line.partition(b":")
        value = value.strip(b" \t")
        if not colon or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            return None
        name = name.lower()
        if name in _NOT_PLAIN or (name == b"content-length" and value != b"0"):
            return None
        if probe and name == b"accept" and probe_answer.wants_json(value):
            return None
        if name == b"connection":
            tokens = {token.strip(b" \t").lower() for token in value.split(b",")}
            if tokens - {b"close", b"keep-alive", b""}:
                return None
            keep_alive = keep_alive and b"close" not in tokens
    return match, keep_alive
