"""The report writer: experiments' tables as CSV with provenance, figures as PNG, and ``report.md``.

Layout under the output folder::

    report.md                         what each experiment tests, its numbers, its figure, its claims
    figures/<experiment>_<data>_<figure>.png
    tables/<experiment>_<data>_<table>.csv
    tables/<experiment>_<data>_<table>.csv.json   provenance: genbound version, commit, package versions,
                                                  seeds, the full configuration, the columns

Every file is written atomically (:mod:`genbound._io`): an interrupted run leaves the previous file or none.
"""
from __future__ import annotations

import datetime
import math
import pathlib

import numpy as np

from genbound._io import atomic_path, atomic_write_json, atomic_write_text, provenance
from genbound.experiments.results import VERDICTS, ExperimentResult

__all__ = ["write_report", "write_experiment", "markdown_table", "HEADLINE"]

#: Summary columns shown in report.md per experiment (every column is in the CSV); others: the first eight.
HEADLINE = {
    "compression": ["n_params", "train_error", "test_error", "gap", "N_manifold", "N_hessian", "eq1_params"],
    "randomization": ["best_train_error", "steps_to_fit", "time_ratio", "final_test_error", "final_gap",
                      "min_error_bound"],
    "batch_landscape": ["test_error", "loss_cv", "coherence", "full_top_eig", "batch_top_eig_median",
                        "fraction_passing"],
    "escape": ["train_loss", "test_error", "full_top_eig", "sharpness", "fraction_passing"],
    "rank1_update": ["train_error", "test_error", "elapsed", "seconds_per_epoch"],
}
MAX_SHOWN = 8

_VERDICT_MARK = {"supported": "**supported**", "not supported": "**not supported**",
                 "inconclusive": "*inconclusive*"}


def _cell(v, digits=4):
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            return "" if math.isnan(v) else str(v)
        return f"{v:.{digits}g}"
    return str(v).replace("|", "\\|")


def markdown_table(frame, digits=4):
    """A DataFrame as a GitHub-flavoured Markdown table (numbers to ``digits`` significant digits)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)


def _summary_view(name, summary):
    """The summary with each shown value as ``mean [lo, hi]`` (95 % t-interval over seeds)."""
    import pandas as pd

    values = [c[:-5] for c in summary.columns if c.endswith("_mean")]
    keys = [c for c in summary.columns if not any(c == f"{v}_{s}" for v in values
                                                  for s in ("mean", "std", "lo", "hi")) and c != "n_seeds"]
    shown = [v for v in HEADLINE.get(name, values[:MAX_SHOWN]) if v in values]
    out = summary[keys].copy()
    for v in shown:
        mean, lo, hi = summary[f"{v}_mean"], summary[f"{v}_lo"], summary[f"{v}_hi"]
        out[v] = [(_cell(m) + (f" [{_cell(a, 3)}, {_cell(b, 3)}]" if np.isfinite(a) and np.isfinite(b) else ""))
                  if np.isfinite(m) else "" for m, a, b in zip(mean, lo, hi)]
    if "n_seeds" in summary:
        out["seeds"] = summary["n_seeds"]
    # drop key columns that say nothing (one value, or all missing)
    out = out[[c for c in out.columns if (c in shown and (out[c] != "").any()) or c == "seeds"
               or (c not in shown and out[c].nunique(dropna=True) > 1)]]
    return pd.DataFrame(out), len(values) > len(shown)


def write_experiment(result, out, key, *, seeds=None, extra=None):
    """Write one experiment's tables (CSV + JSON sidecar) and figures (PNG) under ``out``.

    Returns ``{"tables": {name: path}, "figures": {name: path}}`` (paths relative to ``out``).
    """
    if not isinstance(result, ExperimentResult):
        raise TypeError(f"result: expected an ExperimentResult, got {type(result).__name__}")
    out = pathlib.Path(out)
    written = {"tables": {}, "figures": {}}
    prov = provenance()
    for tname, table in result.tables.items():
        rel = pathlib.Path("tables") / f"{key}_{tname}.csv"
        atomic_write_text(out / rel, table.to_csv(index=False))
        atomic_write_json(out / f"{rel}.json", {
            "file": rel.name, "experiment": result.name, "title": result.title, "table": tname,
            "rows": int(len(table)), "columns": [str(c) for c in table.columns], "seeds": seeds,
            "config": result.config, "provenance": prov, **(extra or {})})
        written["tables"][tname] = rel.as_posix()
    for fname, fig in result.figures.items():
        rel = pathlib.Path("figures") / f"{key}_{fname}.png"
        with atomic_path(out / rel) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        written["figures"][fname] = rel.as_posix()
    return written


def _claims_md(claims):
    lines = []
    for c in claims:
        lines.append(f"- {_VERDICT_MARK[c.verdict]}: {c.statement}. Evidence: {c.evidence}.")
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    lines.append("")
    lines.append("Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + " (a claim is supported when "
                 "the 95 % t-interval over seeds lies wholly on its side of the threshold, not supported when it "
                 "lies wholly on the other side, inconclusive otherwise).")
    return lines


def write_report(entries, out, *, title="genbound: the paper's experiments", run_info=None):
    """Write every experiment's files and ``out/report.md``.

    Parameters
    ----------
    entries : list of (key, ExperimentResult, dict)
        ``key`` names the files (e.g. ``"compression_digits"``); the dict holds ``seeds``, ``seconds`` and
        anything else to record for that experiment.
    out : str or path
    title : str
    run_info : dict, optional
        How the whole run was made (command, quick, backend, workers, total seconds): printed at the top and
        stored in every sidecar.

    Returns
    -------
    pathlib.Path
        The path of ``report.md``.
    """
    out = pathlib.Path(out)
    run_info = dict(run_info or {})
    prov = provenance()
    lines = [f"# {title}", ""]
    lines.append(f"Written {datetime.datetime.now().isoformat(timespec='seconds')} by genbound "
                 f"{prov['genbound']} (commit {prov['commit'] or 'unknown'}; numpy {prov['numpy']}, numba "
                 f"{prov['numba']}, scipy {prov['scipy']}, pandas {prov['pandas']}, Python {prov['python']}).")
    if run_info:
        lines.append("")
        lines.append("Run: " + "; ".join(f"{k} = {v}" for k, v in run_info.items()) + ".")
    lines += ["", "Every number below comes from this run; intervals are 95 % Student-t intervals of the mean "
              "over seeds, written `mean [lo, hi]`. Tables (CSV, each with a `.json` sidecar holding the "
              "provenance and the full configuration) are in `tables/`, figures in `figures/`.", ""]
    lines.append("## Claims at a glance")
    lines.append("")
    for key, result, meta in entries:
        for c in result.claims:
            lines.append(f"- [{key}] {_VERDICT_MARK[c.verdict]}: {c.statement}.")
    lines.append("")
    for key, result, meta in entries:
        files = write_experiment(result, out, key, seeds=meta.get("seeds"),
                                 extra={"run": run_info, "experiment_info": meta})
        lines += [f"## {result.title}", "", result.description, ""]
        info = [f"seeds {meta['seeds']}" if meta.get("seeds") is not None else None,
                f"setting {result.config['setting']}" if result.config.get("setting") else None,
                f"{meta['seconds']:.0f} s" if meta.get("seconds") is not None else None]
        info = [i for i in info if i]
        if info:
            lines += ["Run: " + ", ".join(info) + ".", ""]
        if "summary" in result.tables:
            view, more = _summary_view(result.name, result.tables["summary"])
            lines += ["### Numbers", "", markdown_table(view), ""]
            if more:
                lines += [f"More columns (every bound, standard deviations) in "
                          f"`{files['tables']['summary']}`.", ""]
        for tname, table in result.tables.items():
            if tname in ("runs", "summary") or len(table) > 20 or table.shape[1] > 10:
                continue
            lines += [f"Table `{tname}`:", "", markdown_table(table), ""]
        for fname, rel in files["figures"].items():
            lines += [f"![{result.title}: {fname}]({rel})", ""]
        lines += ["### Claims", ""] + _claims_md(result.claims) + [""]
        lines += ["Files: " + ", ".join(f"`{p}`" for p in [*files["tables"].values(), *files["figures"].values()])
                  + ".", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
