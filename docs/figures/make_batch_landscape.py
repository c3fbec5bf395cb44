"""Per-batch loss landscapes on digits: the end of SGD versus a point of equal training loss reached by full-batch
gradient descent from the same initialization (:func:`genbound.experiments.batch_landscape_study`).

Writes, next to this script (or to --out):
  batch_landscape.png          the figure
  batch_landscape.csv          per-batch tables at the end points (one row per optimizer and batch)
  batch_landscape_summary.csv  one row per optimizer: training, summaries, verdict of the common-minimum test
  batch_landscape_trajectory.csv  per-checkpoint summaries along the runs
  batch_landscape_slices.csv   1-D filter-normalized slices (full and per-batch losses) at the end points

Run from the repository root:  python docs/figures/make_batch_landscape.py  [--quick | --replot]
(about 4 minutes, up to 30 on a loaded 2-core machine; --quick is a smoke test on 300 images; --replot redraws
the PNG from the CSVs).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import genbound as gb  # noqa: E402
from genbound.experiments import (BatchLandscapeStudy, BatchLandscapeStudyConfig, batch_landscape_study,  # noqa: E402
                                  plot_batch_landscape_study)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--quick", action="store_true", help="smoke test on a subset, few epochs")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the CSVs in --out")
    args = parser.parse_args()
    if args.replot:
        study = BatchLandscapeStudy.load(args.out)
    else:
        data = gb.data.load_digits(seed=0)
        config = BatchLandscapeStudyConfig()
        if args.quick:
            data, config = data.subset(np.arange(300)), BatchLandscapeStudyConfig(sgd_epochs=3)
        study = batch_landscape_study(gb.nn.reference_cnn("digits", rank=1, seed=0), data, config)
        study.save(args.out)
        print(study.summary[["optimizer", "steps", "train_loss", "train_error", "test_error", "max_loss", "loss_std",
                             "coherence", "full_top_eig", "full_min_eig", "sharpness_1e-3", "verdict"]].to_string(
            index=False))
    plot_batch_landscape_study(study, args.out / "batch_landscape.png")
    print(f"wrote {args.out}/batch_landscape.png")
