"""The memory the evaluator may hold, in one place: what bounds each cache and buffer, and
the series cap that follows from the sample budget.

Every structure that grows with what the upstream prints is bounded by bytes or by a count
whose bytes are bounded, so the worst case is a sum of caps (docs/operations.md, "Memory
bounds", measured by `make bench`):
- the body: SCRAPE_MAX_BODY_BYTES (exporter.core.scrape reads it once and fails past it);
- label values: exporter.core.scrape.LABEL_VALUE_LIMIT_BYTES each (a longer one fails the scrape);
- the parser's label cache: exporter.core.scrape._LABELS_CACHE_LIMIT_BYTES;
- the history: at most `series_cap(...)` series (new ones evict the stalest), their label text
  within HISTORY_MAX_LABEL_BYTES, and each series' samples within its retention.
"""

# Samples the history holds at most, all series together: one sample costs about 50 bytes
# (a float object and its list slot), so this is about 24 MiB.
HISTORY_MAX_SAMPLES = 500_000
# Label text of the series held, all together (series with huge labels cost as much as many).
HISTORY_MAX_LABEL_BYTES = 8 << 20


def series_cap(max_series: int, retention_seconds: float, interval_seconds: float) -> int:
    """Series the history may hold: HISTORY_MAX_SERIES, lowered where that many series with
    a full retention of samples each would be over HISTORY_MAX_SAMPLES. A page with more
    selected samples than this is a failed scrape (`too_large`) rather than a memory spike."""
    per_series = retention_seconds / max(interval_seconds, 1e-3) + 2  # both ends of the window
    return max(1, min(int(max_series), int(HISTORY_MAX_SAMPLES // per_series)))
