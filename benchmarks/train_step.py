"""Time of one training step of genbound's reference networks (no PyTorch needed).

For "digits" and "mnist", full and rank-1 filters, float32 and float64, batch 64 and 256: the median time of
one ``model.loss_and_grad`` (forward, cross-entropy, backward) and, with ``--hvp``, of one ``model.hvp``.
With ``--hessian``: the time of the top Hessian eigenvalue of the rank-1 digits network over the whole
digits training set (``genbound.landscape.top_eigenvalues``), and the cost of one HVP on that set relative
to one gradient.

    python benchmarks/train_step.py [--threads 2] [--hvp] [--hessian]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all)")
    ap.add_argument("--nets", default="digits,mnist")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--hvp", action="store_true", help="also time one Hessian-vector product")
    ap.add_argument("--hessian", action="store_true", help="time the top Hessian eigenvalue (digits, rank 1)")
    args = ap.parse_args(argv)
    import numba

    import genbound as gb

    if args.threads:
        numba.set_num_threads(args.threads)
    print(_common.machine(), f"; numba threads {numba.get_num_threads()}; load {_common.load():.2f}")
    rows = []
    for name in args.nets.split(","):
        for rank in (None, 1):
            for dtype in (np.float32, np.float64):
                for batch in map(int, args.batches.split(",")):
                    model = gb.nn.reference_cnn(name, rank=rank, seed=0, dtype=dtype)
                    rng = np.random.default_rng(0)
                    x = rng.normal(size=(batch, *model.input_shape)).astype(dtype)
                    y = rng.integers(0, 10, batch)
                    reps = args.reps if name == "digits" else max(5, args.reps // 3)
                    row = dict(net=name, filters="full" if rank is None else f"rank {rank}",
                               dtype=np.dtype(dtype).name, batch=batch,
                               step_ms=1e3 * _common.median_time(lambda: model.loss_and_grad(x, y), reps))
                    if args.hvp:
                        v = rng.normal(size=model.n_params)
                        row["hvp_ms"] = 1e3 * _common.median_time(lambda: model.hvp(x, y, v), reps)
                    rows.append(row)
                    print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                          flush=True)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.precision", 3):
        print(table.to_string(index=False))
    if args.hessian:
        hessian_timing(gb)
    return table


def hessian_timing(gb):
    """Top Hessian eigenvalue of the rank-1 digits network over the whole digits training set."""
    data = gb.data.load_digits(seed=0)
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    gb.train(model, data, epochs=2, batch_size=64, seed=0, progress=False)
    x, y = data.x_train, data.y_train
    v = np.random.default_rng(0).normal(size=model.n_params)
    grad_s = _common.median_time(lambda: model.loss_and_grad(x, y), 10)
    hvp_s = _common.median_time(lambda: model.hvp(x, y, v), 10)
    print(f"digits rank 1, m = {len(y)} training images: gradient {1e3 * grad_s:.2f} ms, HVP {1e3 * hvp_s:.2f} ms "
          f"({hvp_s / grad_s:.2f} gradients); 20 HVPs {20 * hvp_s:.2f} s")
    from genbound import landscape

    t0 = time.perf_counter()
    eig = landscape.top_eigenvalues(model, data, k=1)
    seconds = time.perf_counter() - t0
    print(f"top Hessian eigenvalue {eig.values[0]:.6g} in {seconds:.2f} s ({eig.n_hvp} HVPs, "
          f"{seconds / max(eig.n_hvp, 1) / grad_s:.2f} gradients each)")


if __name__ == "__main__":
    main()
