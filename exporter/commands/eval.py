"""`llm-healthcheck eval`: scrape once (or read a saved page) and print the verbose verdict.

One evaluation only: a rule whose condition holds but has a `for` shows as pending, exactly
as the sidecar would report it on its first cycle.
"""

import os
import sys
import time

from exporter.config.errors import ConfigError

HELP = "Evaluate rules once against an endpoint or a saved /metrics page and print the verdict."


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--endpoint", help="inference server /metrics URL to scrape once")
    source.add_argument("--file", help="a saved /metrics page")
    parser.add_argument("rules", nargs="?", help="rule file or directory (default: the seed env vars' rule)")
    parser.add_argument("--timeout", default="5s", help="scrape timeout (default 5s)")
    parser.add_argument("--json", action="store_true", help="print the /health JSON document instead")


def run(args) -> int:
    import json

    from exporter.config.settings import load_settings
    from exporter.serve.evaluator import Evaluator, SystemClock
    from exporter.serve.explain import health_document, verbose_lines
    from exporter.serve.fleet_poller import FleetLink
    from exporter.serve.logs import configure_logging

    configure_logging("text", "error")  # the verdict says it all; no per-cycle log lines
    overrides = {
        "RULES_PATH": args.rules,
        "SCRAPE_TIMEOUT": args.timeout,
        "SCRAPE_INTERVAL": "10m",  # one scrape only; the longest interval, so any sane --timeout fits below it
        "FAILURE_THRESHOLD": "1",
    }
    if args.endpoint:
        overrides["METRICS_ENDPOINT"] = args.endpoint
    try:
        settings = load_settings(os.environ, overrides)
        factory = _file_scraper(args.file) if args.file else None
        fleet = FleetLink(SystemClock)
        evaluator = Evaluator(settings, fleet=fleet, **({"scraper_factory": factory} if factory else {}))
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        return 2
    if fleet.poller is not None:
        fleet.poller.poll()  # one round of the fleet: block's queries, so the verdict shows the fleet view too
    decision = evaluator.cycle()
    evaluator.stop()
    if args.json:
        print(json.dumps(health_document(decision), indent=2))
    else:
        print("\n".join(verbose_lines(decision)))
    return 0 if decision.ready else 1


def _file_scraper(path: str):
    from exporter.config.errors import Problem
    from exporter.core.scrape import UNPARSABLE, ScrapeFailure, ScrapeResult, is_empty_body, parse_samples

    try:
        with open(path, "rb") as handle:
            body = handle.read()
    except OSError as err:
        raise ConfigError([Problem(path, message=f"cannot read: {err.strerror.lower()}")]) from None

    class FileScraper:
        def scrape(self, names):
            started = time.monotonic()
            if is_empty_body(body):
                return ScrapeResult(True, (), True)
            try:
                return ScrapeResult(True, parse_samples(body, names), duration=time.monotonic() - started)
            except ScrapeFailure as failure:
                return ScrapeResult(False, reason=UNPARSABLE, error=str(failure))

        def close(self):
            pass

    return lambda url, timeout, limit: FileScraper()
