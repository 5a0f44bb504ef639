"""`llm-healthcheck fake-server`: a simulated TGI, vLLM or SGLang /metrics on loopback."""

import argparse
import signal
import sys
import threading
from pathlib import Path

from exporter.config.numbers import flag, parse_number, parse_whole

HELP = """Serve /metrics like a real TGI, vLLM or SGLang server, driven by a queueing model.

Requests arrive as a Poisson process whose rate follows --profile (or --rate, or
--rate-csv time,rate); the model of a continuous-batching server turns them into
queue size, batch size, KV-cache usage, counters and latency histograms. Real
requests (POST /v1/completions, POST /generate) enter the same model and are held for
the modelled time; --rate 0 serves only those. GET /state shows the model as JSON;
GET/POST /control reads or sets the arrival rate, KV-cache capacity and faults (slow,
stall) at run time (docs/testbed.md). Stops cleanly on SIGTERM or SIGINT."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from exporter.sim.pages import ENGINES
    from exporter.sim.profiles import NAMED

    parser.add_argument(
        "--engine", choices=ENGINES, default="tgi", help="which server's metrics to print (default tgi)"
    )
    parser.add_argument(
        "--bind-host", "--host", dest="host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=flag(parse_whole, 0, 65535), default=8080, help="port to bind; 0 picks a free one (default 8080)"
    )
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--profile", choices=sorted(NAMED), help="named load profile (default steady)")
    load.add_argument("--rate", type=flag(parse_number), metavar="REQ_PER_S", help="constant arrival rate")
    load.add_argument("--rate-csv", type=Path, metavar="FILE", help="CSV of time,rate rows (seconds since start)")
    parser.add_argument(
        "--scenario",
        metavar="SCENARIO",
        help="take engine and server model from this scenario (file or shipped name); see --region",
    )
    parser.add_argument("--region", help="which region's model of --scenario (default: its first region)")
    parser.add_argument("--name", default="fake-server", help="this pod's name, sent in X-Served-By")
    parser.add_argument("--seed", type=flag(parse_whole), help="random seed (default: the profile's own, else 1)")
    parser.add_argument("--max-batch-size", type=flag(parse_whole, 1), help="running batch limit (default 16)")
    parser.add_argument("--model-name", help="model_name label for vLLM and SGLang")
    parser.add_argument(
        "--max-concurrent-requests",
        type=flag(parse_whole, 1),
        metavar="N",
        help='refuse requests beyond N in the server, counted in tgi_request_failure{err="overloaded"} '
        "(default 128 for tgi, as TGI's own default; no limit otherwise)",
    )


def run(args: argparse.Namespace) -> int:
    # Handlers first: a supervisor may send SIGTERM while we are still importing.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    from dataclasses import replace

    from exporter.sim.model import ModelConfig
    from exporter.sim.profiles import ProfileError, build_profile, named_profile, read_trace, trace_rate
    from exporter.sim.server import SimulatedServer, serve

    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be 0..65535, got {args.port}")
    try:
        if args.rate_csv is not None:
            rate, seed, what = trace_rate(read_trace(args.rate_csv)), 1, f"trace {args.rate_csv}"
        elif args.rate is not None:
            rate, seed, what = build_profile({"shape": "constant", "rate": args.rate}), 1, f"{args.rate:g} req/s"
        else:
            name = args.profile or "steady"
            (rate, seed), what = named_profile(name), f"profile {name}"
    except ProfileError as err:
        return _fail(str(err))
    if args.seed is not None:
        seed = args.seed
    config = ModelConfig()
    if args.scenario:
        found = _scenario_model(args.scenario, args.region)
        if isinstance(found, str):
            return _fail(found)
        args.engine, config = found
    try:
        if args.max_batch_size is not None:
            config = replace(config, max_batch_size=args.max_batch_size)
        if args.model_name:
            config = replace(config, model_name=args.model_name)
        limit = args.max_concurrent_requests
        if limit is None and args.engine == "tgi" and not args.scenario:
            limit = 128
        if limit is not None or not args.scenario:  # a scenario's model keeps its own limit
            config = replace(config, max_concurrent_requests=limit)
    except ValueError as err:
        return _fail(str(err))

    simulated = SimulatedServer(args.engine, rate, config, seed)
    try:
        httpd = serve(args.host, args.port, simulated, args.name)
    except OSError as err:
        return _fail(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")

    worker = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    worker.start()
    host, port = httpd.server_address[:2]
    print(
        f"fake-server: {args.engine} on http://{host}:{port}/metrics ({what}, seed {seed}, "
        f"capacity ~{config.capacity():.1f} req/s)",
        file=sys.stderr,
        flush=True,
    )
    # The main thread only waits, so signal handlers run promptly; shutdown() must not be
    # called from the thread running serve_forever.
    while not stop.wait(0.1):
        pass
    httpd.shutdown()
    httpd.server_close()
    worker.join(timeout=5)
    return 0


def _fail(message: str) -> int:
    print(f"llm-healthcheck fake-server: {message}", file=sys.stderr)
    return 2


def _scenario_model(name: str, region: str | None):
    """(engine, model config) of a scenario region, or a one-line error."""
    from exporter.config.errors import ConfigError
    from exporter.sim.scenario import load_scenario, resolve_scenario

    try:
        scenario = load_scenario(resolve_scenario(name))
    except ConfigError as err:
        return str(err.problems[0])
    for spec in scenario.regions:
        if region is None or spec.name == region:
            return scenario.engine, spec.model
    return f"--region {region!r} is not a region of {scenario.name}: {', '.join(r.name for r in scenario.regions)}"
