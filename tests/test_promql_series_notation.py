"""promtool's expanding series notation, as rule unit tests and the conformance files use it."""

import math

import pytest

from exporter.rules.series_notation import STALE, SeriesNotationError, expand_values


def test_counting_up_and_down_gives_n_plus_one_values():
    assert expand_values("0+10x3") == [0.0, 10.0, 20.0, 30.0]
    assert expand_values("5-1x2") == [5.0, 4.0, 3.0]
    assert expand_values("-2x4") == [-2.0] * 5
    assert expand_values("1x0") == [1.0]


def test_gaps_stale_markers_and_special_values():
    values = expand_values("1 _ stale _x2 NaN Inf -Inf")
    assert values[:3] == [1.0, None, STALE]
    assert values[3:5] == [None, None]
    assert math.isnan(values[5]) and values[6] == math.inf and values[7] == -math.inf


def test_steps_accumulate_like_prometheus_does():
    # repeated addition, not a + i*b: the float rounding matches the upstream parser
    assert expand_values("0.1+0.1x2")[-1] == 0.1 + 0.1 + 0.1


def test_exponents_and_signs():
    assert expand_values("1e3 +2 -0.5") == [1000.0, 2.0, -0.5]
    assert expand_values("1e-3+1e-3x1") == [0.001, 0.002]


@pytest.mark.parametrize("bad", ["abc", "1+x3", "1+1x", "x3", "stale+1x2", "1,2"])
def test_malformed_items_are_named_in_the_error(bad):
    with pytest.raises(SeriesNotationError) as err:
        expand_values(bad)
    assert repr(bad.split()[0]) in str(err.value) or bad in str(err.value)


def test_native_histograms_are_refused_clearly():
    with pytest.raises(SeriesNotationError, match="native histogram"):
        expand_values("{{schema:1 sum:1 count:1}}")


def test_huge_expansions_are_refused():
    with pytest.raises(SeriesNotationError, match="more than"):
        expand_values("1x99999999")
