"""The one rulebook for the plain readiness probe, shared by the three places that answer it:
the worker's poller (probe_worker, via plain_probe), the WSGI fast path (app.ProbeFastPath) and
the Falcon resource (app.HealthResource). What a plain probe is, and what it gets, is said here."""

PATH = "/health"
METHODS = ("GET", "HEAD")
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def wants_json(accept: str | bytes | None) -> bool:
    """Kubelet and load balancers send `*/*` or nothing: they get the seed's plain bodies."""
    if not accept:
        return False
    if isinstance(accept, bytes):
        return JSON.encode() in accept
    return JSON in accept


def _answer(status: str, body: bytes) -> tuple:
    headers = (("cache-control", "no-store"), ("content-type", TEXT), ("content-length", str(len(body))))
    return status, headers, body


# (status, headers, body) by readiness: the seed's bodies.
ANSWERS = {
    True: _answer("200 OK", b"Healthy\n"),
    False: _answer("503 Service Unavailable", b"Unhealthy\n"),
}
