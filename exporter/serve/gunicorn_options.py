"""gunicorn settings and hooks: one worker (exporter.serve.probe_worker), the evaluator
started inside it.

Why one worker: hysteresis state lives in memory; several workers would scrape the inference
server several times per interval and could give the kubelet different answers.

Signals:
- SIGTERM (master or worker): /health turns 503 at once; the worker keeps answering for
  `shutdown_drain` seconds so load balancers see the drain, then exits gracefully.
- SIGHUP (master): forwarded to the worker as a rules reload. gunicorn's own SIGHUP would
  replace the worker and lose every rule's state.
"""

import gc
import math
import os
import signal
import sys
import threading

from exporter.config.errors import PROGRAM
from exporter.config.settings import workers_problem

WORKER_CLASS = "exporter.serve.probe_worker.ProbeFirstWorker"


def options(settings) -> dict:
    opts = {
        "bind": [f"{_host(settings.bind_host)}:{settings.port}"],
        "workers": 1,
        "worker_class": WORKER_CLASS,
        "threads": settings.threads,
        "graceful_timeout": max(1, math.ceil(settings.graceful_timeout)),
        "timeout": 30,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "control_socket_disable": True,
        "proc_name": "llm-healthcheck",
        # Build the app in the master so the worker shares its code and rules copy-on-write.
        # `serve` builds it there anyway; this makes the plain gunicorn command do the same.
        "preload_app": True,
        "on_starting": on_starting,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
    }
    if os.path.isdir("/dev/shm"):
        opts["worker_tmp_dir"] = "/dev/shm"  # works with a read-only root filesystem
    return opts


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def on_starting(server) -> None:
    problem = workers_problem(server.cfg.workers, "gunicorn workers")
    if problem is not None:
        print(f"{PROGRAM}: {problem}", file=sys.stderr)
        sys.exit(2)
    server.handle_hup = lambda: _forward_hup(server)
    # Everything loaded so far (modules, compiled rules) lives as long as the process. Moving
    # it out of the collector's reach keeps the worker's garbage collections short (they run
    # on whichever thread allocates, request threads included, so they show in probe p99) and
    # stops them from writing into pages the worker shares with the master.
    gc.freeze()


def _forward_hup(server) -> None:
    for pid in list(server.WORKERS):
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            pass


def post_worker_init(worker) -> None:
    from exporter.serve.runtime import current

    runtime = current()
    evaluator = runtime.evaluator
    evaluator.start()
    from exporter.serve import agent_check

    agent_check.start(runtime.settings, lambda: evaluator.decision)

    def on_term(signum, frame):
        evaluator.terminate()
        drain = runtime.settings.shutdown_drain
        timer = threading.Timer(drain, worker.handle_exit, args=(signum, frame))
        timer.daemon = True
        timer.start()

    def on_hup(signum, frame):
        evaluator.request_reload()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    signal.siginterrupt(signal.SIGTERM, False)
    signal.siginterrupt(signal.SIGHUP, False)


def worker_exit(server, worker) -> None:
    from exporter.serve.runtime import current

    runtime = current(required=False)
    if runtime is not None:
        runtime.evaluator.stop(timeout=2.0)
