"""The bounded sample store: staleness, retention, the series limit, lookups."""

import pytest

from exporter.core.history import STALE, History


def lab(name, **labels):
    return tuple(sorted({**labels, "__name__": name}.items()))


Q = lab("tgi_queue_size")
Q_POD = lab("tgi_queue_size", pod="a")


def only_series(history, labels):
    return next(s for s in history.series() if s.labels == labels)


def test_newest_sample_within_lookback_is_the_instant_value():
    h = History(retention_seconds=60)
    h.record(10.0, [(Q, 1.0)])
    h.record(11.0, [(Q, 2.0)])
    s = only_series(h, Q)
    assert s.value_at(11.0, 300) == 2.0
    assert s.value_at(10.5, 300) == 1.0
    assert s.value_at(9.0, 300) is None  # before the first sample
    assert s.value_at(311.0, 300) is None  # left-open window: exactly lookback old is out
    assert s.value_at(310.9, 300) == 2.0


def test_series_missing_from_a_scrape_goes_stale_at_once():
    h = History(retention_seconds=60)
    h.record(1.0, [(Q, 5.0), (Q_POD, 7.0)])
    h.record(2.0, [(Q, 6.0)])
    assert only_series(h, Q_POD).value_at(2.0, 300) is None
    assert only_series(h, Q_POD).value_at(1.5, 300) == 7.0  # history before the marker stays
    # and the range view leaves the marker out
    times, values = only_series(h, Q_POD).window(0.0, 2.0)
    assert (times, values) == ([1.0], [7.0])


def test_series_that_comes_back_after_going_stale_is_visible_again():
    h = History(retention_seconds=60)
    h.record(1.0, [(Q, 5.0)])
    h.record(2.0, [])
    h.record(3.0, [(Q, 8.0)])
    assert only_series(h, Q).value_at(3.0, 300) == 8.0
    assert only_series(h, Q).values == [5.0, None, 8.0]


def test_old_samples_are_dropped_but_a_live_series_keeps_its_newest():
    h = History(retention_seconds=10)
    for t in range(0, 30):
        h.record(float(t), [(Q, float(t))])
    times = only_series(h, Q).times
    assert times[0] >= 19.0 and times[-1] == 29.0
    assert h.sample_count == len(times)
    # a gauge that never changes and is scraped rarely still answers instant queries
    h2 = History(retention_seconds=10)
    h2.record(0.0, [(Q, 3.0)])
    h2.record(100.0, [(Q, 3.0)])
    assert only_series(h2, Q).times == [100.0]


def test_gone_series_are_forgotten_after_retention():
    h = History(retention_seconds=5)
    h.record(0.0, [(Q, 1.0), (Q_POD, 1.0)])
    h.record(1.0, [(Q, 1.0)])
    assert h.series_count == 2
    for t in range(2, 10):
        h.record(float(t), [(Q, 1.0)])
    assert h.series_count == 1
    assert [s.labels for s in h.series()] == [Q]


def test_new_series_beyond_the_limit_are_dropped_and_counted():
    h = History(retention_seconds=60, max_series=3)
    samples = [(lab("m", i=str(i)), 1.0) for i in range(5)]
    assert h.record(0.0, samples) == 2
    assert h.series_count == 3
    # known series keep updating; only the extra ones are refused again
    assert h.record(1.0, samples) == 2
    assert h.sample_count == 6


def test_a_clock_stepping_back_starts_the_history_afresh():
    h = History(retention_seconds=60)
    h.record(100.0, [(Q, 1.0), (Q_POD, 1.0)])
    h.record(40.0, [(Q, 2.0)])
    # the new scrape is visible at the new time, nothing "from the future" hides it
    assert only_series(h, Q).value_at(40.0, 300) == 2.0
    assert [s.labels for s in h.series()] == [Q]
    assert h.sample_count == 1


def test_empty_label_values_are_the_same_as_no_label():
    h = History(retention_seconds=60)
    h.record(0.0, [(lab("m", model=""), 1.0)])
    assert [s.labels for s in h.series()] == [lab("m")]


def test_load_series_accepts_gaps_and_stale_markers():
    h = History(retention_seconds=60)
    h.load_series(Q, [(0, 1.0), (60, None), (120, STALE), (180, 4.0)])
    s = only_series(h, Q)
    assert s.times == [0.0, 120.0, 180.0]
    assert s.value_at(150, 300) is None
    assert s.value_at(180, 300) == 4.0
    with pytest.raises(ValueError, match="older than the newest"):
        h.load_series(Q, [(10, 1.0)])


def test_bad_construction_is_refused():
    with pytest.raises(ValueError):
        History(retention_seconds=0)
    with pytest.raises(ValueError):
        History(retention_seconds=10, max_series=0)
