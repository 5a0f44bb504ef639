"""Issue 14, item 14: no credential from an upstream URL reaches a log, a page or an error.

The URL carries every kind of secret at once: a password with a raw `@`, and the query
parameters S3-style presigning, OAuth and API gateways use. A real sidecar is started with it
against a real upstream, and every place that shows a URL is read."""

import json

import pytest

from exporter.cli import main
from exporter.commands import serve as serve_command
from exporter.config.errors import ConfigError
from exporter.config.settings import load_settings, redact_url
from tests.support import FAST

SECRETS = ("s3cr@t", "s3cr", "AKIAEXAMPLE", "SIGVALUE", "CLIENTSECRET", "APIKEYVALUE", "TOKVALUE", "X-Amz-Cred-VAL")
QUERY = (
    "?access_key=AKIAEXAMPLE&X-Amz-Signature=SIGVALUE&client_secret=CLIENTSECRET"
    "&api-key=APIKEYVALUE&token=TOKVALUE&X-Amz-Credential=X-Amz-Cred-VAL&job=vllm"
)


@pytest.fixture(autouse=True)
def no_gunicorn(monkeypatch):
    """`serve` must stop before gunicorn: if it gets that far, fail instead of serving forever."""

    def started(self):
        raise AssertionError("serve accepted the configuration and went on to start gunicorn")

    monkeypatch.setattr(serve_command._GunicornApp, "run", started)


def secret_url(base: str) -> str:
    return base.replace("http://", "http://scraper:s3cr@t@") + QUERY


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {where}"


def test_redaction_hides_userinfo_with_a_raw_at_and_every_credential_parameter():
    shown = redact_url(secret_url("http://127.0.0.1:9000/metrics"))
    assert shown == (
        "http://***@127.0.0.1:9000/metrics?access_key=***&X-Amz-Signature=***&client_secret=***"
        "&api-key=***&token=***&X-Amz-Credential=***&job=vllm"
    )


def test_every_page_and_the_log_of_a_real_sidecar_are_free_of_secrets(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": secret_url(upstream.url), **FAST})
    sidecar.wait_ready_to_serve()
    sidecar.wait_for(lambda: sidecar.health() == 200, 5, "ready")
    pages = {
        "/rules": sidecar.get("/rules")[1],
        "/health json": sidecar.get("/health", {"Accept": "application/json"})[1],
        "/health?verbose": sidecar.get("/health?verbose")[1],
        "/": sidecar.get("/")[1],
        "/api/v1/status": sidecar.get("/api/v1/status")[1],
        "/metrics": sidecar.get("/metrics")[1],
        "/load": sidecar.get("/load")[1],
    }
    for shown in ("/rules", "/", "/api/v1/status"):  # the pages that show the endpoint show it redacted
        assert "http://***@127.0.0.1" in pages[shown] and "X-Amz-Signature=***" in pages[shown], shown
    upstream.status = 500  # the scrape now fails: its error text is shown too
    sidecar.wait_for(lambda: "scrape failing" in sidecar.output, 10, "scrape failure logged")
    pages["/health json (failing)"] = sidecar.get("/health", {"Accept": "application/json"})[1]
    pages["log"] = sidecar.output
    for where, text in pages.items():
        assert_no_secret(text, where)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://scraper:s3cr@t@host:abc/metrics" + QUERY,
            "is not a valid URL (the port must be a number from 1 to 65535)",
        ),
        ("http://scraper:s3cr@t@[::1/metrics" + QUERY, "is not a valid URL (an IPv6 address needs matching [ ])"),
        ("http://scraper:s3cr@t@host/me trics" + QUERY, "holds a space or control character; percent-encode it (%20)"),
    ],
)
def test_a_malformed_url_is_a_one_line_error_naming_no_secret(url, message, capsys, monkeypatch):
    with pytest.raises(ConfigError) as caught:
        load_settings({"METRICS_ENDPOINT": url})
    text = str(caught.value)
    assert text.startswith('env METRICS_ENDPOINT: "') and text.endswith(message)
    assert_no_secret(text, "the settings error")
    monkeypatch.setenv("METRICS_ENDPOINT", url)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert_no_secret(err, "serve's exit message")


def test_check_of_a_rule_file_endpoint_names_no_secret(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    rules = "rules:\n  - name: q\n    expr: sum(x)\n    above: 1\n"
    bad.write_text(f'scrape:\n  endpoint: "http://scraper:s3cr@t@host:abc/metrics{QUERY}"\n' + rules)
    spaced = tmp_path / "spaced.yaml"
    spaced.write_text(f'scrape:\n  endpoint: "http://scraper:s3cr@t@host/a b{QUERY}"\n' + rules)
    for path, message in ((bad, "is not a valid URL"), (spaced, "is not an http:// or https:// URL")):
        assert main(["check", str(path)]) != 0
        out = capsys.readouterr()
        text = out.out + out.err
        assert f"{path}:2:13: endpoint: " in text and message in text and "Traceback" not in text
        assert_no_secret(text, f"check {path.name}")


def test_json_logs_redact_the_start_line(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": secret_url(upstream.url), "LOG_FORMAT": "json", **FAST})
    sidecar.wait_ready_to_serve()
    sidecar.wait_for(lambda: sidecar.health() == 200, 5, "ready")
    entries = [json.loads(line) for line in sidecar.output.splitlines() if line.startswith("{")]
    assert any("http://***@127.0.0.1" in entry["msg"] for entry in entries)
    assert_no_secret(sidecar.output, "JSON log")


def test_eval_against_a_secret_url_prints_no_secret(capsys):
    url = secret_url("http://127.0.0.1:9/metrics")  # port 9 (discard): refused on loopback
    for extra in ([], ["--json"]):
        main(["eval", "--endpoint", url, *extra])
        out = capsys.readouterr()
        assert "connection refused" in out.out
        assert_no_secret(out.out + out.err, f"eval {extra}")


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("host:abc", "is not a valid URL (the port must be a number from 1 to 65535)"),
        ("[::1", "is not a valid URL (an IPv6 address needs matching [ ])"),
        ("host:99999", "is not a valid URL (the port must be a number from 1 to 65535)"),
    ],
)
def test_a_malformed_fleet_url_is_a_located_error_naming_no_secret(tmp_path, capsys, host, message):
    path = tmp_path / "fleet.yaml"
    path.write_text(
        f'fleet:\n  url: "http://scraper:s3cr@t@{host}/api/v1/query{QUERY}"\n'
        "  queries:\n    - name: pods\n      expr: count(up)\n"
        "rules:\n  - name: q\n    expr: sum(x)\n    above: 1\n"
    )
    assert main(["check", str(path)]) != 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{path}:2:8: url: " in text and message in text and "Traceback" not in text
    assert_no_secret(text, "check of a fleet url")
