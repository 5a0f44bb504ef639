"""The fleet view through a real evaluator on a fake clock: a loopback query API answers what
each test says, rounds are stepped by hand, and ages move only with the clock.

What an operator relies on: fleet:<name> series are there for rules while the view is fresh;
a failed or stale answer gives exactly the standalone decision; the guard keeps a busy pod in
when most of the fleet is out, never against a hard-failure rule; all of it visible on
/metrics, /health?verbose and the JSON answer."""

import logging
import re

import pytest
from falcon import testing

from exporter.config.settings import load_settings
from exporter.core.fleet_link import FleetLink
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.fleet_poller import FleetPoller
from exporter.serve.telemetry import build_registry
from tests.fleet_api import FleetAPI, scalar, vector

PODS, UNREADY = "count(llm_healthcheck_ready)", "count(llm_healthcheck_ready == 0)"
PEERS = "quantile(0.5, sum by (pod) (tgi_queue_size))"


def rules_text(url: str, extra_rules: str = "", fraction: str = "0.5") -> str:
    return f"""
fleet:
  url: {url}
  interval: 10s
  timeout: 2s
  max_unready_fraction: {fraction}
  queries:
    - name: pods
      expr: {PODS}
    - name: unready
      expr: {UNREADY}
    - name: peer_queue
      expr: {PEERS}
rules:
  - name: queue_high
    expr: sum(tgi_queue_size)
    above: 10
  - name: peers_idle_while_busy
    expr: sum(tgi_queue_size) - on() fleet:peer_queue
    above: 8
    severity: warn
{extra_rules}"""


@pytest.fixture
def api():
    server = FleetAPI()
    yield server
    server.close()


@pytest.fixture
def make_world(clock, upstream, api, tmp_path):
    def make(text: str | None = None):
        path = tmp_path / f"rules{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(text or rules_text(api.url))
        settings = load_settings({"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(path)})
        link = FleetLink(clock, FleetPoller)
        evaluator = Evaluator(settings, clock=clock, fleet=link)
        client = testing.TestClient(
            create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False))
        )

        class World:
            def cycle(self, queue: float, poll: bool = True):
                """One fleet round (unless poll=False), then one evaluation cycle, a second later."""
                upstream.body = f"tgi_queue_size {queue}\n".encode()
                clock.advance(1)
                if poll:
                    link.poller.poll()
                return evaluator.cycle()

            def metrics(self) -> dict:
                found = {}
                for line in client.simulate_get("/metrics").text.splitlines():
                    if line.startswith("llm_healthcheck_f"):
                        name, value = line.rsplit(" ", 1)
                        found[name] = float(value)
                return found

            def verbose(self) -> str:
                return client.simulate_get("/health", params={"verbose": ""}).text

            def json(self) -> dict:
                return client.simulate_get("/health", headers={"Accept": "application/json"}).json

        world = World()
        world.evaluator, world.link, world.client, world.path = evaluator, link, client, path
        return world

    return make


def fleet(api, pods=10, unready=2, peers=3.0):
    api.answers = {PODS: scalar(pods), UNREADY: vector(({}, unready)) if unready else vector(), PEERS: scalar(peers)}


def test_query_results_become_series_the_rules_read(make_world, api):
    world = make_world()
    # Before the first cycle the fleet families exist already, the view not yet in use.
    assert world.metrics()['llm_healthcheck_fleet_query_failures_total{reason="timeout"}'] == 0.0
    assert "[+] fleet: not in use, deciding standalone: no answer yet" in world.verbose()
    fleet(api, peers=3)
    decision = world.cycle(queue=12)
    warn = next(s for s in decision.rules if s.rule.name == "peers_idle_while_busy")
    assert warn.value == 9.0  # 12 here, 3 across the peers
    assert warn.state == "firing"
    assert decision.fleet.in_use and (decision.fleet.pods, decision.fleet.unready) == (10, 2)
    metrics = world.metrics()
    assert metrics["llm_healthcheck_fleet_query_success"] == 1.0
    assert (metrics["llm_healthcheck_fleet_pods"], metrics["llm_healthcheck_fleet_unready"]) == (10.0, 2.0)
    assert "[+] fleet: ok: 10 pods, 2 unready (answer 0s old)" in world.verbose()
    # Every query went to the configured endpoint, bounded by a timeout Prometheus also applies.
    assert {r["path"] for r in api.requests} == {"/api/v1/query"}
    assert {r["query"] for r in api.requests} == {PODS, UNREADY, PEERS}
    assert all(re.fullmatch(r"[0-9]+ms", r["timeout"]) and 0 < int(r["timeout"][:-2]) <= 2000 for r in api.requests)


def test_an_empty_unready_answer_is_zero_and_an_empty_pods_answer_is_a_failure(make_world, api):
    world = make_world()
    fleet(api, unready=0)
    assert world.cycle(queue=1).fleet.unready == 0
    api.answers[PODS] = vector()
    decision = world.cycle(queue=1)
    assert not decision.fleet.in_use
    assert 'query "pods": returned nothing' in decision.fleet.why_not
    assert world.metrics()['llm_healthcheck_fleet_query_failures_total{reason="bad_result"}'] == 1.0


def test_the_guard_keeps_a_busy_pod_in_while_most_of_the_fleet_is_out(make_world, api):
    world = make_world()
    fleet(api, pods=10, unready=5)  # this pod going out would make 6 of 10 unready
    assert world.cycle(queue=1).ready
    decision = world.cycle(queue=20)
    assert decision.ready and decision.fail_open
    assert world.client.simulate_get("/health").status_code == 200
    assert world.metrics()["llm_healthcheck_fail_open"] == 1.0
    verbose = world.verbose()
    assert "[-] queue_high: firing for " in verbose and "sum(tgi_queue_size) = 20 > 10" in verbose  # what it sees
    assert "[+] fail-open guard: holds this pod in (max_unready_fraction 0.5)" in verbose
    assert verbose.rstrip().endswith(
        "ready: fail-open: 6 of 10 pods would be unready, more than max_unready_fraction 0.5; "
        'would be out because rule "queue_high" firing: value 20 > threshold 10'
    )
    document = world.json()
    assert (document["ready"], document["fail_open"], document["fleet"]["in_use"]) == (True, True, True)
    assert document["fleet"]["guard_holds_pod_in"] is True

    fleet(api, pods=10, unready=2)  # peers came back: going out now leaves 3 of 10
    decision = world.cycle(queue=20)
    assert (decision.ready, decision.fail_open) == (False, False)
    assert world.metrics()["llm_healthcheck_fail_open"] == 0.0
    assert "[+] fail-open guard: armed" in world.verbose()


def test_a_hard_failure_rule_takes_the_pod_out_whatever_the_fleet(make_world, api):
    stalled = """  - name: stalled
    expr: sum(tgi_queue_size) > 100
    hard_failure: true
"""
    world = make_world(rules_text(api.url, stalled))
    fleet(api, pods=4, unready=2)
    assert world.cycle(queue=1).ready
    assert world.cycle(queue=20).fail_open  # busy: held in
    decision = world.cycle(queue=200)  # broken: out although the fleet is mostly out
    assert (decision.ready, decision.fail_open) == (False, False)
    assert 'rule "queue_high" firing' in decision.reason and "(+1 more)" in decision.reason


@pytest.mark.parametrize(
    "answer, reason, message",
    [
        (b"<html>bad gateway</html>", "unparsable", "answer is not JSON"),
        (
            b'{"status": "error", "errorType": "bad_data", "error": "parse error"}',
            "query_error",
            "bad_data: parse error",
        ),
        (
            b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
            "bad_result",
            "returned a matrix; write an instant query",
        ),
        (
            b'{"status": "success", "data": {"resultType": "scalar", "result": [1, "many"]}}',
            "unparsable",
            "not a number",
        ),
    ],
)
def test_a_garbled_answer_means_standalone_and_says_so(make_world, api, caplog, answer, reason, message):
    world = make_world()
    fleet(api, pods=10, unready=5)
    assert world.cycle(queue=1).ready
    assert world.cycle(queue=20).fail_open
    api.answers[UNREADY] = answer
    with caplog.at_level(logging.WARNING, logger="llm_healthcheck"):
        decision = world.cycle(queue=20)
    # Exactly the standalone answer: out on the busy rule, and the rules read no fleet series.
    assert (decision.ready, decision.fail_open) == (False, False)
    assert decision.reason == 'rule "queue_high" firing: value 20 > threshold 10'
    warn = next(s for s in decision.rules if s.rule.name == "peers_idle_while_busy")
    assert (warn.state, warn.value) == ("ok", None)
    assert message in decision.fleet.why_not and decision.fleet.why_not.startswith('query failed: query "unready": ')
    metrics = world.metrics()
    assert metrics["llm_healthcheck_fleet_query_success"] == 0.0
    assert metrics[f'llm_healthcheck_fleet_query_failures_total{{reason="{reason}"}}'] == 1.0
    assert [r.getMessage() for r in caplog.records if "fleet query failing" in r.getMessage()] != []
    assert "[+] fleet: not in use, deciding standalone: query failed" in world.verbose()
    assert "[+] fail-open guard: inactive: no fleet view" in world.verbose()


def test_a_redirect_is_not_followed(make_world, api):
    world = make_world()
    fleet(api)
    api.status, api.headers = 302, {"Location": "http://127.0.0.1:9/elsewhere"}
    decision = world.cycle(queue=1)
    assert not decision.fleet.in_use
    assert "answered HTTP 302, a redirect (not followed)" in decision.fleet.why_not
    assert len(api.requests) == 1  # the first query failed the round; nothing went elsewhere


def test_an_answer_over_the_body_cap_is_refused_not_read(make_world, api):
    world = make_world()
    fleet(api)
    huge = [({"pod": f"p{i}", "padding": "x" * 1000}, 1) for i in range(1100)]  # over 1 MiB
    api.answers[PEERS] = vector(*huge)
    decision = world.cycle(queue=1)
    assert decision.fleet.why_not.startswith('query failed: query "peer_queue": body of ')
    assert decision.fleet.why_not.endswith(" bytes is over the 1048576-byte cap")
    assert world.metrics()['llm_healthcheck_fleet_query_failures_total{reason="too_large"}'] == 1.0


def test_an_answer_older_than_max_age_is_not_used(make_world, api, clock, caplog):
    world = make_world()
    fleet(api, pods=10, unready=5)
    assert world.cycle(queue=1).ready
    assert world.cycle(queue=20).fail_open
    with caplog.at_level(logging.INFO, logger="llm_healthcheck"):
        for _ in range(30):  # max_age is 2 x 10s + 2s; the poller has not answered since
            decision = world.cycle(queue=20, poll=False)
            if not decision.fleet.in_use:
                break
    assert "fleet view stale: the last answer is 23s old, more than max_age 22s; deciding standalone" in caplog.text
    assert decision.fleet.why_not == "stale: the last answer is 23s old, more than max_age 22s"
    assert (decision.ready, decision.fail_open) == (False, False)
    assert world.metrics()["llm_healthcheck_fleet_query_success"] == 0.0
    with caplog.at_level(logging.INFO, logger="llm_healthcheck"):
        assert world.cycle(queue=20).fleet.in_use  # the poller answers again
    assert "fleet view fresh again" in caplog.text


def test_a_pod_that_cannot_reach_prometheus_behaves_as_without_a_fleet_block(make_world, api, upstream, tmp_path):
    # The same rules (fleet:peer_queue included) without the fleet block.
    without = make_world("rules:\n" + rules_text(api.url).split("rules:\n", 1)[1])
    with_fleet = make_world()
    api.close()  # nothing listens there any more: connection refused
    for queue in (1, 12, 20, 12, 5, 30, 0):
        a, b = without.cycle(queue, poll=False), with_fleet.cycle(queue)
        assert (a.ready, a.reason, a.fail_open) == (b.ready, b.reason, b.fail_open)
        assert [(s.rule.name, s.state, s.value) for s in a.rules] == [(s.rule.name, s.state, s.value) for s in b.rules]
    assert with_fleet.evaluator.decision.fleet.why_not == 'query failed: query "pods": connection refused'
    assert without.evaluator.decision.fleet is None
    assert "llm_healthcheck_fleet_query_success" not in without.metrics()


def test_userinfo_becomes_basic_auth_and_never_shows(make_world, api, caplog):
    secret_url = api.url.replace("http://", "http://fleet:s3cret@")
    world = make_world(rules_text(secret_url))
    fleet(api)
    api.status = 500
    with caplog.at_level(logging.INFO, logger="llm_healthcheck"):
        world.cycle(queue=1)
    assert api.requests[0]["authorization"] == "Basic ZmxlZXQ6czNjcmV0"
    shown = world.verbose() + str(world.json()) + world.client.simulate_get("/rules").text + caplog.text
    assert "s3cret" not in shown and world.json()["fleet"]["url"].startswith("http://***@127.0.0.1:")


def test_a_reload_swaps_the_fleet_block_and_a_broken_one_keeps_the_last_good(make_world, api):
    world = make_world()
    fleet(api, pods=10, unready=5)
    assert world.cycle(queue=1).fleet.in_use
    first = world.link.poller

    # A broken block: the reload fails, and the rules, the poller and the view in use stay.
    world.path.write_text(rules_text(api.url).replace("interval: 10s", "interval: 10"))
    assert world.evaluator.reload() is False
    assert world.link.poller is first and world.cycle(queue=1).fleet.in_use

    # A changed block: a new poller, which has no answer until its first round.
    world.path.write_text(rules_text(api.url, fraction="0.2"))
    assert world.evaluator.reload() is True
    assert world.link.poller is not first
    decision = world.cycle(queue=1, poll=False)
    assert (decision.fleet.in_use, decision.fleet.why_not) == (False, "no answer yet")
    assert world.cycle(queue=1).fleet.config.max_unready_fraction == 0.2

    # The block removed: no fleet view at all, and no fleet_* families on /metrics.
    world.path.write_text("rules:\n" + rules_text(api.url).split("rules:\n", 1)[1])
    assert world.evaluator.reload() is True
    assert world.link.poller is None and world.cycle(queue=1, poll=False).fleet is None
    assert [name for name in world.metrics() if "fleet" in name] == []
    assert world.metrics()["llm_healthcheck_fail_open"] == 0.0
