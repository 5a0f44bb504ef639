"""HAProxy's agent-check on an optional TCP port (AGENT_PORT, `serve --agent-port`).

HAProxy's agent protocol: the balancer connects to the agent port every `agent-inter`,
the agent writes one ASCII line and closes. The sidecar answers from the current
decision, never from a scrape, so the answer costs microseconds:

- unready: `drain` (HAProxy stops sending new requests; in-flight ones finish);
- ready: `ready up <w>%`, where `ready` cancels an earlier drain, `up` lets health checks
  alone decide up/down, and `<w>` = round(100 x (1 - load)) from the decision's load score
  (`llm_healthcheck_load`, 0..1). Without a load score the weight is 100%. A ready pod's
  weight is kept at 1% or more: 0% would drain a pod the rules call ready, and a fleet that
  is all at load 1 would then have no server at all.

The socket is bound at startup in the gunicorn master (a taken port is a startup error,
exit 2), and served by one thread in the worker, which holds the decision.
"""

import logging
import socket
import threading
from collections.abc import Callable

from exporter.serve.load_page import current_load

log = logging.getLogger("llm_healthcheck")

_listener: socket.socket | None = None


def agent_answer(decision) -> str:
    if decision is None or not decision.ready:
        return "drain\n"
    load = _published_load(decision)
    if load is None or load != load:
        weight = 100
    else:
        weight = min(100, max(1, round(100 * (1.0 - min(max(float(load), 0.0), 1.0)))))
    return f"ready up {weight}%\n"


def listen(host: str, port: int) -> socket.socket:
    """Bind the agent port (raises OSError); kept for the worker, which inherits it."""
    global _listener
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    _listener = sock
    return sock


def start(settings, decision: Callable[[], object]) -> threading.Thread | None:
    """In the worker: answer agent checks from `decision()` until the process exits."""
    sock = _listener
    if sock is None and settings.agent_port:
        try:
            sock = listen(settings.bind_host, settings.agent_port)
        except OSError as err:
            log.error("cannot listen on agent port %s:%s: %s", settings.bind_host, settings.agent_port, err)
            return None
    if sock is None:
        return None
    thread = threading.Thread(target=_serve, args=(sock, decision), name="agent-check", daemon=True)
    thread.start()
    return thread


def _serve(sock: socket.socket, decision: Callable[[], object]) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return  # listener closed
        try:
            conn.settimeout(1.0)
            conn.sendall(agent_answer(decision()).encode("ascii"))
        except OSError:
            pass  # HAProxy hung up first: it counts that as a failed agent check itself
        finally:
            conn.close()


def _published_load(decision) -> float | None:
    """The value /load publishes for this decision; None where it carries no score at all."""
    if getattr(decision, "ruleset", None) is None:
        return getattr(decision, "load", None)  # a bare value (tests hand one in)
    if decision.ruleset.score is None:
        return None  # no score section: health checks alone decide, weight 100%
    return current_load(decision).value
