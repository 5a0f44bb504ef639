"""`llm-healthcheck eval`: scrape once (or read a saved page) and print the verbose verdict;
with --watch, keep scraping at the interval and print every transition.

One evaluation only, by default: a rule whose condition holds but has a `for` shows as
pending, and rate() has no second sample yet, exactly as on the sidecar's first cycle.
--watch builds history as the sidecar does, so rate(), `for` and `keep_firing_for` act.
"""

import os
import time

from exporter.config.errors import ConfigError

HELP = """Evaluate rules against an endpoint or a saved /metrics page and print the verdict.

Once by default: the verbose verdict (the lines of /health?verbose), then exit
0 when the pod would be ready, 1 when it would be unready, 2 on a configuration error
(bad flag, rule file problem, unreadable page).

With --watch it keeps scraping at --scrape-interval and prints one line per rule or
readiness transition, until --duration has passed or Ctrl-C; the exit code is then that of
the last verdict (130 on Ctrl-C)."""


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--metrics-endpoint",
        "--endpoint",
        dest="endpoint",
        metavar="URL",
        help="inference server /metrics URL to scrape (--endpoint is the older name)",
    )
    source.add_argument("--file", help="a saved /metrics page (re-read at every scrape with --watch)")
    parser.add_argument("rules", nargs="?", help="rule file or directory (default: the seed env vars' rule)")
    parser.add_argument("--rules", dest="rules_flag", metavar="RULES", help="the same as the positional argument")
    parser.add_argument(
        "--scrape-timeout", "--timeout", dest="timeout", default="5s", help="scrape timeout (--timeout: older name)"
    )
    parser.add_argument("--json", action="store_true", help="print the /health JSON document instead")
    parser.add_argument("--watch", action="store_true", help="keep scraping and print each transition")
    parser.add_argument("--scrape-interval", default="1s", help="time between scrapes with --watch")
    parser.add_argument("--duration", help="with --watch: stop after this long, e.g. 2m (default: until Ctrl-C)")


def run(args) -> int:
    import json

    from exporter.commands.cli_parser import fail
    from exporter.config.settings import load_settings, parse_duration
    from exporter.core.fleet_link import FleetLink
    from exporter.serve.evaluator import Evaluator, SystemClock
    from exporter.serve.explain import health_document, verbose_lines
    from exporter.serve.fleet_poller import FleetPoller
    from exporter.serve.logs import configure_logging

    configure_logging("text", "error")  # the verdict says it all; no per-cycle log lines
    if args.rules and args.rules_flag and args.rules != args.rules_flag:
        fail(f"two rule paths given ({args.rules} and --rules {args.rules_flag}); give one")
    overrides = {
        "RULES_PATH": args.rules or args.rules_flag,
        "SCRAPE_TIMEOUT": args.timeout,
        # one scrape only without --watch: the longest interval, so any sane --timeout fits below it
        "SCRAPE_INTERVAL": args.scrape_interval if args.watch else "10m",
        "FAILURE_THRESHOLD": "1",
    }
    if args.endpoint:
        overrides["METRICS_ENDPOINT"] = args.endpoint
    try:
        settings = load_settings(os.environ, overrides)
        duration = None
        if args.duration is not None:
            try:
                duration = parse_duration(args.duration)
            except ValueError as err:
                fail(f'--duration "{args.duration}" {err}')
        factory = _file_scraper(args.file) if args.file else None
        fleet = FleetLink(SystemClock, FleetPoller)
        evaluator = Evaluator(settings, fleet=fleet, **({"scraper_factory": factory} if factory else {}))
    except ConfigError as err:
        fail(str(err))
    if fleet.poller is not None:
        fleet.poller.poll()  # one round of the fleet: block's queries, so the verdict shows the fleet view too
    try:
        if args.watch:
            fleet.start()  # the fleet view keeps polling on its own thread, as in the sidecar
        decision = evaluator.cycle()
        if args.json and not args.watch:
            print(json.dumps(health_document(decision), indent=2))
        else:
            print("\n".join(verbose_lines(decision)), flush=True)
        if args.watch:
            decision = _watch(evaluator, decision, duration)
    finally:
        evaluator.stop()  # stops the fleet poller too
    return 0 if decision.ready else 1


def _watch(evaluator, decision, duration):
    """Scrape every interval; print each rule and readiness change with the wall time."""
    from exporter.serve.verbose_lines import rule_line

    interval = evaluator.config.interval
    started = time.monotonic()
    next_at = started + interval
    while duration is None or time.monotonic() - started < duration:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        previous, decision = decision, evaluator.cycle()
        stamp = time.strftime("%H:%M:%S", time.localtime(decision.time))
        for status in decision.rules:
            if status.changed:
                print(f"{stamp} {status.previous_state} -> {rule_line(status, decision.time)}", flush=True)
        if previous.ready != decision.ready:
            word = "ready" if decision.ready else "unready"
            print(f"{stamp} readiness -> {word}: {decision.reason}", flush=True)
    return decision


def _file_scraper(path: str):
    from exporter.config.errors import Problem
    from exporter.core.scrape import UNPARSABLE, ScrapeFailure, ScrapeResult, is_empty_body, parse_samples

    def read() -> bytes:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError as err:
            raise ConfigError([Problem(path, message=f"cannot read: {err.strerror.lower()}")]) from None

    read()  # an unreadable file is a configuration error at once

    class FileScraper:
        def scrape(self, names):
            started = time.monotonic()
            try:
                body = read()
            except ConfigError as err:
                return ScrapeResult(False, reason=UNPARSABLE, error=str(err))
            if is_empty_body(body):
                return ScrapeResult(True, (), True)
            try:
                return ScrapeResult(True, parse_samples(body, names), duration=time.monotonic() - started)
            except ScrapeFailure as failure:
                return ScrapeResult(False, reason=UNPARSABLE, error=str(failure))

        def close(self):
            pass

    return lambda url, timeout, limit: FileScraper()
