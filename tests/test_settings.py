"""The seed's environment: same names and defaults, its silent fallbacks turned into clear errors."""

import pytest

from exporter.config.errors import ConfigError
from exporter.config.scrape_config import ScrapeConfig
from exporter.config.settings import check_scrape, effective_scrape, load_settings, parse_duration, redact_url


def test_defaults_are_the_seeds():
    settings = load_settings({})
    config = effective_scrape(settings, ScrapeConfig())
    assert config.endpoint == "http://localhost:8080/metrics"
    assert settings.metric_to_check == "tgi_queue_size"
    assert settings.metric_threshold == 15
    assert settings.port == 8081
    assert settings.bind_host == "0.0.0.0"
    assert config.interval == 1.0 and config.timeout == 0.8
    assert config.failure_threshold == 3 and config.on_failure == "unready" and config.on_empty == "ready"


@pytest.mark.parametrize("raw, expected", [("0", 0.0), ("-3", -3.0), ("2.5", 2.5), (" 7 ", 7.0), ("1e3", 1000.0)])
def test_threshold_accepts_zero_negative_and_fractions(raw, expected):
    # The seed turned 0 into 15 and refused fractions; here every number is taken as written.
    assert load_settings({"METRIC_THRESHOLD": raw}).metric_threshold == expected


@pytest.mark.parametrize(
    "env, line",
    [
        ({"METRIC_THRESHOLD": "abc"}, 'env METRIC_THRESHOLD: "abc" is not a number'),
        ({"METRIC_THRESHOLD": "nan"}, 'env METRIC_THRESHOLD: "nan" is not a finite number'),
        ({"METRIC_THRESHOLD": "inf"}, 'env METRIC_THRESHOLD: "inf" is not a finite number'),
        ({"METRIC_THRESHOLD": "9" * 400}, f'env METRIC_THRESHOLD: "{"9" * 400}" is not a finite number'),
        ({"APP_PORT": "http"}, 'env APP_PORT: "http" is not a whole number'),
        ({"APP_PORT": "70000"}, 'env APP_PORT: "70000" is out of range (1-65535)'),
        ({"APP_PORT": "0"}, 'env APP_PORT: "0" is out of range (1-65535)'),
        (
            {"METRICS_ENDPOINT": "localhost:8080"},
            'env METRICS_ENDPOINT: "localhost:8080" is not an http:// or https:// URL',
        ),
        ({"METRIC_TO_CHECK": "tgi queue"}, 'env METRIC_TO_CHECK: "tgi queue" is not a metric name'),
        ({"SCRAPE_INTERVAL": "soon"}, 'env SCRAPE_INTERVAL: "soon" is not a duration (e.g. 1s, 800ms, 1m30s)'),
        ({"SCRAPE_INTERVAL": "0s"}, 'env SCRAPE_INTERVAL: "0s" must be between 10ms and 10m'),
        ({"FAILURE_THRESHOLD": "0"}, 'env FAILURE_THRESHOLD: "0" must be at least 1'),
        ({"ON_FAILURE": "panic"}, 'env ON_FAILURE: "panic" is not one of: unready, ready, hold'),
        ({"WEB_CONCURRENCY": "4"}, "env WEB_CONCURRENCY: 4 workers requested; llm-healthcheck runs exactly one worker"),
    ],
)
def test_bad_values_name_the_variable_and_the_value(env, line):
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert str(err.value).startswith(line)
    assert len(err.value.problems) == 1


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load_settings({"METRIC_THRESHOLD": "x", "APP_PORT": "y"})
    assert [p.file for p in err.value.problems] == ["env METRIC_THRESHOLD", "env APP_PORT"]


def test_readme_alias_is_accepted():
    # The seed's README said METRICS_THRESHOLD; the seed read METRIC_THRESHOLD and ignored the other.
    assert load_settings({"METRICS_THRESHOLD": "3"}).metric_threshold == 3


def test_alias_and_name_agreeing_is_fine():
    assert load_settings({"METRICS_THRESHOLD": "3", "METRIC_THRESHOLD": "3.0"}).metric_threshold == 3


def test_alias_and_name_disagreeing_stops_startup():
    with pytest.raises(ConfigError) as err:
        load_settings({"METRICS_THRESHOLD": "3", "METRIC_THRESHOLD": "4"})
    assert 'env METRICS_THRESHOLD: "3" differs from METRIC_THRESHOLD "4"' in str(err.value)


def test_flags_override_env():
    settings = load_settings(
        {"APP_PORT": "9000", "METRICS_THRESHOLD": "3"}, {"APP_PORT": "9100", "METRIC_THRESHOLD": "5"}
    )
    assert settings.port == 9100 and settings.metric_threshold == 5


def test_flags_and_env_override_the_rule_file_scrape_block():
    from_file = ScrapeConfig(endpoint="http://file:1/metrics", interval=2.0, failure_threshold=5)
    settings = load_settings({"SCRAPE_INTERVAL": "500ms"})
    config = effective_scrape(settings, from_file)
    assert config.endpoint == "http://file:1/metrics"
    assert config.interval == 0.5
    assert config.timeout == 0.4
    assert config.failure_threshold == 5


def test_timeout_must_be_below_interval():
    settings = load_settings({"SCRAPE_INTERVAL": "1s", "SCRAPE_TIMEOUT": "1s"})
    problems = check_scrape(effective_scrape(settings, ScrapeConfig()))
    assert [str(p) for p in problems] == [
        'settings: timeout: "1s" must be less than interval ("1s"), or scrapes would overlap'
    ]


@pytest.mark.parametrize("text, seconds", [("1", 1), ("0.5", 0.5), ("800ms", 0.8), ("1m30s", 90), ("2h", 7200)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_urls_are_redacted_for_logs():
    assert redact_url("http://user:pw@host:8080/metrics?token=abc&x=1") == "http://***@host:8080/metrics?token=***&x=1"
