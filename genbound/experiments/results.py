"""What an experiment returns: tidy tables, figures, and claims judged from statistics over seeds.

Every experiment runs over several seeds and reports, per group, the mean, the standard deviation and a 95 %
Student-t interval of the mean over seeds; a claim is *supported* when the interval of the quantity it is
about lies entirely on the claimed side of its threshold, *not supported* when it lies entirely on the other
side, and *inconclusive* when the interval spans the threshold (or fewer than two seeds were run).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

VERDICTS = ("supported", "not supported", "inconclusive")


def t_interval(values, confidence=0.95):
    r"""Mean and two-sided Student-t confidence interval of the mean of ``values`` (NaNs dropped).

    .. math:: \bar x \pm t_{n-1,\,(1+c)/2}\, s / \sqrt{n}

    with :math:`s` the sample standard deviation. With fewer than two values the interval is (nan, nan).

    Returns
    -------
    mean, std, lo, hi, n
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, np.nan, np.nan, np.nan, n
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * std / np.sqrt(n)
    return mean, std, mean - half, mean + half, n


def seed_summary(table, by, values, confidence=0.95):
    """Per group of ``by``, for each column of ``values``: mean, std, 95 % t-interval (lo, hi) over seeds, n.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (group, seed).
    by : list of str
        The grouping columns (everything but the seed).
    values : list of str
        The measured columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``by`` + ``{v}_mean, {v}_std, {v}_lo, {v}_hi`` for each value, + ``n_seeds``.
    """
    by = list(by)
    rows = []
    groups = table.groupby(by, sort=False, dropna=False) if by else [((), table)]
    for key, grp in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        n = 0
        for v in values:
            mean, std, lo, hi, n_v = t_interval(grp[v], confidence)
            row.update({f"{v}_mean": mean, f"{v}_std": std, f"{v}_lo": lo, f"{v}_hi": hi})
            n = max(n, n_v)
        row["n_seeds"] = n
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(lo, hi, threshold=0.0, side="above"):
    """Judge a claim "the quantity is above (or below) ``threshold``" from its interval ``[lo, hi]``.

    Returns one of :data:`VERDICTS`: supported when the whole interval is on the claimed side, not supported
    when it is wholly on the other side, inconclusive otherwise (including a NaN interval).
    """
    if side not in ("above", "below"):
        raise ValueError(f"side: expected 'above' or 'below', got {side!r}")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive"
    above, below = lo > threshold, hi < threshold
    if side == "below":
        above, below = below, above
    return "supported" if above else "not supported" if below else "inconclusive"


@dataclass(frozen=True)
class Claim:
    """One sentence of the paper (or beyond it), the verdict, and the evidence it rests on.

    Attributes
    ----------
    statement : str
        The claim, as tested.
    verdict : str
        One of :data:`VERDICTS`.
    evidence : str
        The numbers (with their intervals over seeds) that decided it.
    """

    statement: str
    verdict: str
    evidence: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict: expected one of {VERDICTS}, got {self.verdict!r}")


@dataclass
class ExperimentResult:
    """What one experiment produced: tables (tidy DataFrames), figures (matplotlib), claims and its config.

    Attributes
    ----------
    name : str
        Short identifier (used for file names), e.g. ``"compression"``.
    title : str
        One line for the report.
    description : str
        What the experiment tests and how (a paragraph of Markdown).
    tables : dict of str -> pandas.DataFrame
        ``"runs"`` (one row per cell and seed) and ``"summary"`` (statistics over seeds) at least.
    figures : dict of str -> matplotlib.figure.Figure
    claims : list of Claim
    config : dict
        The full configuration the experiment ran with (JSON-serializable).
    """

    name: str
    title: str
    description: str
    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    claims: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
