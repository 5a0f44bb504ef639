"""/metrics pinned for a fixed scenario: names, labels, children at 0, values from one decision."""

import os
from pathlib import Path

from falcon import testing

from exporter.config.settings import load_settings
from exporter.core.scrape import ScrapeResult
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.telemetry import build_registry

GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"
Q, B = (("__name__", "tgi_queue_size"),), (("__name__", "tgi_batch_current_size"),)

# One canned scrape result per cycle: the golden file is about rendering, so scrape durations must
# be fixed; real scraping is covered by the upstream tests.
SCRIPT = [
    ScrapeResult(True, ((Q, 2.0), (B, 8.0)), duration=0.002),
    ScrapeResult(True, ((Q, 12.0), (B, 16.0)), duration=0.003),
    ScrapeResult(False, reason="timeout", error="scrape timed out", duration=0.8),
    ScrapeResult(True, ((Q, 7.0), (B, 16.0)), duration=0.004),
]


class Scripted:
    def __init__(self, *_):
        self.results = iter(SCRIPT)

    def scrape(self, names):
        return next(self.results)

    def close(self):
        pass


def render_scenario(clock, monkeypatch) -> str:
    monkeypatch.chdir(Path(__file__).parents[1])
    settings = load_settings(
        {"RULES_PATH": "tests/golden/rules.yaml", "METRICS_ENDPOINT": "http://127.0.0.1:9/metrics"}
    )
    evaluator = Evaluator(settings, clock=clock, scraper_factory=Scripted)
    for _ in SCRIPT:
        clock.advance(1)
        evaluator.cycle()
    client = testing.TestClient(create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False)))
    return client.simulate_get("/metrics").text


def test_metrics_match_the_golden_file(clock, monkeypatch):
    text = render_scenario(clock, monkeypatch)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
