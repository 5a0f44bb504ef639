"""The HAProxy agent answer carries the load score the sidecar publishes on /load: a real
evaluator on a fake clock, a real loopback upstream, weights that fall as the queue grows."""

from exporter.config.settings import load_settings
from exporter.serve.agent_check import agent_answer
from exporter.serve.evaluator import Evaluator

RULES = "score:\n  expr: sum(tgi_queue_size) / 20\nrules:\n  - {name: q, expr: sum(tgi_queue_size), above: 15}\n"


def test_agent_weight_follows_the_load_score_and_drains_when_unready(tmp_path, clock, upstream):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    evaluator = Evaluator(load_settings({"RULES_PATH": str(rules), "METRICS_ENDPOINT": upstream.url}), clock=clock)
    answers = []
    for queue in (0, 5, 10, 14, 16, 2):
        upstream.body = f"tgi_queue_size {queue}\n".encode()
        clock.advance(1)
        answers.append(agent_answer(evaluator.cycle()))
    evaluator.stop()
    # load = queue / 20, weight = 100 x (1 - load); over the threshold the pod drains.
    assert answers == [
        "ready up 100%\n",
        "ready up 75%\n",
        "ready up 50%\n",
        "ready up 30%\n",
        "drain\n",
        "ready up 90%\n",
    ]


def test_without_a_score_section_health_checks_alone_decide(tmp_path, clock, upstream):
    evaluator = Evaluator(load_settings({"METRICS_ENDPOINT": upstream.url}), clock=clock)
    upstream.body = b"tgi_queue_size 3\n"
    clock.advance(1)
    assert agent_answer(evaluator.cycle()) == "ready up 100%\n"
    evaluator.stop()
