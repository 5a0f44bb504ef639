"""A /metrics page for the commands that look at one (`check --against`, `eval --file`):
scraped once from a URL with the sidecar's own scraper, or read from a saved file."""

from exporter.config.errors import ConfigError
from exporter.config.settings import parse_duration, redact_url

MAX_BODY_BYTES = 16 * 1024 * 1024


class PageError(Exception):
    """The page could not be had; the message is one line naming the source."""


def page_samples(source: str, timeout: str = "5s") -> tuple:
    from exporter.core.scrape import ScrapeFailure, Scraper, is_empty_body, parse_samples

    if source.startswith(("http://", "https://")):
        try:
            seconds = parse_duration(timeout)
        except ValueError as err:
            raise PageError(f'--timeout "{timeout}" {err}') from None
        scraper = Scraper(source, seconds, MAX_BODY_BYTES)
        try:
            result = scraper.scrape(None)
        finally:
            scraper.close()
        if not result.ok:
            raise PageError(f"cannot scrape {redact_url(source)}: {result.error}")
        return result.samples
    try:
        with open(source, "rb") as handle:
            body = handle.read(MAX_BODY_BYTES + 1)
    except OSError as err:
        raise PageError(f"{source}: cannot read: {(err.strerror or str(err)).lower()}") from None
    if len(body) > MAX_BODY_BYTES:
        raise PageError(f"{source}: larger than {MAX_BODY_BYTES >> 20} MiB; is this a /metrics page?")
    if is_empty_body(body):
        return ()
    try:
        return parse_samples(body, None)
    except (ScrapeFailure, ConfigError) as err:
        raise PageError(f"{source}: not a Prometheus text page: {err}") from None


def page_names(source: str, timeout: str = "5s") -> set[str]:
    return {value for labels, _ in page_samples(source, timeout) for key, value in labels if key == "__name__"}
