"""Statistics over seeds and verdicts, against scipy's own interval and hand-made cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from genbound.experiments.results import Claim, seed_summary, t_interval, verdict


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=12))
def test_t_interval_matches_scipy(xs):
    mean, std, lo, hi, n = t_interval(xs)
    assert n == len(xs)
    if np.std(xs) == 0:
        assert lo == pytest.approx(hi)
        return
    ref = stats.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=stats.sem(xs))
    np.testing.assert_allclose([lo, hi], ref, rtol=1e-9, atol=1e-9)
    assert std == pytest.approx(np.std(xs, ddof=1))


def test_t_interval_edge_cases():
    assert np.isnan(t_interval([1.0])[2]) and t_interval([1.0])[4] == 1
    assert t_interval([np.nan, 2.0, 4.0])[0] == 3.0
    assert t_interval([])[4] == 0


@pytest.mark.parametrize("lo, hi, threshold, side, expected", [
    (0.1, 0.3, 0.0, "above", "supported"),
    (-0.3, -0.1, 0.0, "above", "not supported"),
    (-0.1, 0.1, 0.0, "above", "inconclusive"),
    (-0.3, -0.1, 0.0, "below", "supported"),
    (0.1, 0.3, 0.0, "below", "not supported"),
    (np.nan, np.nan, 0.0, "above", "inconclusive"),
    (1.5, 2.5, 2.0, "above", "inconclusive"),
])
def test_verdict(lo, hi, threshold, side, expected):
    assert verdict(lo, hi, threshold, side) == expected


def test_verdict_and_claim_refuse_bad_values():
    with pytest.raises(ValueError, match="side"):
        verdict(0, 1, side="up")
    with pytest.raises(ValueError, match="verdict"):
        Claim("x", "true", "y")


def test_seed_summary_groups():
    table = pd.DataFrame({"rank": [1, 1, 1, 2, 2, 2], "seed": [0, 1, 2] * 2, "gap": [0.1, 0.2, 0.3, 1, 1, 1]})
    out = seed_summary(table, ["rank"], ["gap"])
    assert list(out["rank"]) == [1, 2] and list(out["n_seeds"]) == [3, 3]
    assert out.loc[0, "gap_mean"] == pytest.approx(0.2)
    assert out.loc[0, "gap_lo"] < 0.2 < out.loc[0, "gap_hi"]
    assert out.loc[1, "gap_lo"] == pytest.approx(1.0) and out.loc[1, "gap_hi"] == pytest.approx(1.0)
