"""One training step of the reference networks: genbound against PyTorch on the CPU, interleaved.

For "digits" and "mnist" (``genbound.nn.reference_cnn``), full and rank-1 filters, float32 and float64, batch
64 and 256, both libraries on the same number of threads: the median time of one training step (forward,
cross-entropy, backward), genbound's and PyTorch's timed alternately in one process, and their ratio
(genbound / PyTorch; lower is faster): the libraries alternate in blocks of ``--block`` steps, and a case's time
is the median over its blocks of the mean step time. For rank 1 PyTorch gets the faster of two ways: rebuilding the full
weight from the factors then an ordinary convolution, and the separable chain 1x1 conv -> depthwise (kh, 1)
-> depthwise (1, kw). Also: GFLOP/s against numpy's matmul peak measured in the same run, how far each case
is from its limit (FLOP peak or memory bandwidth, whichever binds), and numba's compile time on a cold and a
warm cache.

    pip install torch==2.13.0      # the `bench` extra of pyproject.toml
    python benchmarks/vs_torch.py --threads 2 --md docs/vs_torch.md --csv vs_torch.csv

Targets: full filters <= 1.0 in both dtypes; rank 1 <= 0.5 in float32 and <= 0.3 in float64 (a ratio within
10 % of its target counts as a tie).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

FLOORS = {(False, "float64"): 1.0, (False, "float32"): 1.0, (True, "float64"): 0.3, (True, "float32"): 0.5}


def torch_nets(model, torch):
    """Training-step closures of PyTorch copies of ``model``: {"conv": ...} for full filters, {"rebuild":
    ..., "separable": ...} for CP filters. Each closure takes (x, y) tensors and returns the loss."""
    import torch.nn.functional as F

    from genbound.nn import Conv2d, CPConv2d, Dense, Flatten, MaxPool2d, ReLU

    tdtype = torch.float64 if model.dtype == np.float64 else torch.float32
    params = {k: torch.tensor(np.array(v), dtype=tdtype, requires_grad=True) for k, v in model.params.items()}

    def forward(x, mode):
        for i, layer in enumerate(model.layers):
            if isinstance(layer, Conv2d):
                x = F.conv2d(x, params[f"{i}.weight"], params[f"{i}.bias"], layer.stride, layer.padding)
            elif isinstance(layer, CPConv2d):
                p, q, t = params[f"{i}.p"], params[f"{i}.q"], params[f"{i}.t"]
                o, r, c = p.shape
                k, s, pad = layer.kernel_size, layer.stride, layer.padding
                if mode == "rebuild":
                    w = torch.einsum("orc,orj,ork->ocjk", p, q, t)
                    x = F.conv2d(x, w, params[f"{i}.bias"], s, pad)
                else:
                    z = F.conv2d(x, p.reshape(o * r, c, 1, 1))
                    z = F.conv2d(z, q.reshape(o * r, 1, k, 1), None, (s, 1), (pad, 0), groups=o * r)
                    z = F.conv2d(z, t.reshape(o * r, 1, 1, k), None, (1, s), (0, pad), groups=o * r)
                    if r > 1:
                        z = z.reshape(z.shape[0], o, r, *z.shape[2:]).sum(dim=2)
                    x = z + params[f"{i}.bias"].reshape(1, o, 1, 1)
            elif isinstance(layer, ReLU):
                x = F.relu(x)
            elif isinstance(layer, MaxPool2d):
                x = F.max_pool2d(x, layer.kernel_size, layer.stride)
            elif isinstance(layer, Flatten):
                x = x.reshape(x.shape[0], -1)
            elif isinstance(layer, Dense):
                x = F.linear(x, params[f"{i}.weight"], params[f"{i}.bias"])
            else:
                raise TypeError(f"no PyTorch equivalent for {layer!r}")
        return x

    def make(mode):
        def step(x, y):
            for v in params.values():
                v.grad = None
            loss = F.cross_entropy(forward(x, mode), y)
            loss.backward()
            return loss

        return step

    modes = ["rebuild", "separable"] if any(isinstance(L, CPConv2d) for L in model.layers) else ["conv"]
    return {mode: make(mode) for mode in modes}, params


def run_case(name, rank, dtype, batch, torch, min_reps, budget, pause, block):
    import genbound as gb

    model = gb.nn.reference_cnn(name, rank=rank, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *model.input_shape)).astype(dtype)
    y = rng.integers(0, 10, batch)
    steps, params = torch_nets(model, torch)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    # the two libraries compute the same loss and gradients
    loss, grads = model.loss_and_grad(x, y)
    for step in steps.values():
        tl = float(step(tx, ty).detach())
        assert abs(tl - loss) <= 1e-4 * max(1.0, abs(loss)), (name, rank, dtype, tl, loss)
        key = next(iter(params))
        g = params[key].grad.numpy()
        assert np.allclose(g, grads[key], rtol=1e-3, atol=1e-4 * np.abs(grads[key]).max()), key
    fns = {"genbound": lambda: model.loss_and_grad(x, y)}
    fns.update({f"torch_{mode}": (lambda s=s: s(tx, ty)) for mode, s in steps.items()})
    for fn in fns.values():  # warm-up
        fn()
    times = {k: [] for k in fns}
    t_end = time.perf_counter() + budget
    reps = 0
    while reps < min_reps or (time.perf_counter() < t_end and reps < 200):
        for key, fn in fns.items():  # alternated blocks: every library sees the same machine state
            if pause:
                time.sleep(pause)
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            times[key].append((time.perf_counter() - t0) / block)
        reps += 1
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    flops, traffic = _common.step_model(model, batch)
    return model, med, flops, traffic, reps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nets", default="digits,mnist")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--ranks", default="full,1")
    ap.add_argument("--min-reps", type=int, default=7)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of timing per case (at least min-reps)")
    ap.add_argument("--pause", type=float, default=0.002, help="seconds of idle before each timed block")
    ap.add_argument("--block", type=int, default=5,
                    help="steps per timed block; the libraries alternate block by block, and a case's time is the "
                         "median over its blocks of the mean step time (a block absorbs the wake-up of the "
                         "other library's idle threads, which a single alternated step would be charged)")
    ap.add_argument("--omp-wait-policy", default=None, choices=["ACTIVE", "PASSIVE"],
                    help="OMP_WAIT_POLICY for PyTorch's OpenMP threads (default: left as is; ACTIVE spins between "
                         "parallel regions, which pays only on an idle machine, PASSIVE sleeps)")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold/warm compile-time measurement")
    ap.add_argument("--csv", help="write the table as CSV")
    ap.add_argument("--md", help="write the table (and machine, peaks) as markdown")
    args = ap.parse_args(argv)

    # read by the OpenMP runtime when it loads, so before importing torch
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    def measure_peaks():
        with threadpool_limits(limits=args.threads, user_api="blas"):
            return {dt: _common.matmul_peak(dt) for dt in ("float32", "float64")}, _common.bandwidth()

    peak, bw = measure_peaks()
    print(_common.machine())
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"OMP_WAIT_POLICY {policy}; threads {args.threads}; "
          f"numpy matmul peak: float32 {peak['float32']:.0f} GFLOP/s, float64 {peak['float64']:.0f} GFLOP/s; "
          f"copy bandwidth {bw:.1f} GB/s; load {_common.load():.2f}", flush=True)

    rows = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name in args.nets.split(","):
            for rank_s in args.ranks.split(","):
                rank = None if rank_s == "full" else int(rank_s)
                for dt in args.dtypes.split(","):
                    for batch in map(int, args.batches.split(",")):
                        model, med, flops, traffic, reps = run_case(name, rank, np.dtype(dt).type, batch, torch,
                                                                    args.min_reps, args.budget, args.pause,
                                                                    args.block)
                        tt = {k: v for k, v in med.items() if k.startswith("torch")}
                        best = min(tt, key=tt.get)
                        gb_ms = med["genbound"]
                        bound_ms = max(flops / (peak[dt] * 1e9), traffic / (bw * 1e9)) * 1e3
                        rows.append(dict(
                            net=name, filters="full" if rank is None else f"rank {rank}", dtype=dt, batch=batch,
                            genbound_ms=gb_ms,
                            torch_ms=tt[best], torch_way=best.replace("torch_", ""),
                            **{f"{k}_ms": v for k, v in tt.items()},
                            ratio=gb_ms / tt[best],
                            floor=FLOORS[(rank is not None, dt)],
                            gflops=flops / gb_ms / 1e6,
                            pct_peak=100 * flops / gb_ms / 1e6 / peak[dt],
                            gbytes_s=traffic / gb_ms / 1e6,
                            limit="flops" if flops / peak[dt] > traffic / bw else "memory",
                            x_limit=gb_ms / bound_ms,
                            reps=reps, _flops=flops, _traffic=traffic,
                        ))
                        r = rows[-1]
                        print(f"{name:6s} {r['filters']:6s} {dt} {batch:4d}: genbound {gb_ms:8.2f} ms, torch "
                              f"{r['torch_ms']:8.2f} ms ({r['torch_way']}), ratio {r['ratio']:.3f} (floor "
                              f"{r['floor']}), {r['gflops']:.1f} GFLOP/s, {r['x_limit']:.1f}x its "
                              f"{r['limit']} limit", flush=True)
    # peaks measured again at the end: other processes may have held a core the first time; keep the best
    peak2, bw2 = measure_peaks()
    peak = {dt: max(peak[dt], peak2[dt]) for dt in peak}
    bw = max(bw, bw2)
    print(f"peaks (best of start and end): float32 {peak['float32']:.0f} GFLOP/s, float64 {peak['float64']:.0f} "
          f"GFLOP/s; copy bandwidth {bw:.1f} GB/s")
    for r in rows:
        dt = r["dtype"]
        flops, traffic = r.pop("_flops"), r.pop("_traffic")
        r["pct_peak"] = 100 * flops / r["genbound_ms"] / 1e6 / peak[dt]
        r["limit"] = "flops" if flops / peak[dt] > traffic / bw else "memory"
        r["x_limit"] = r["genbound_ms"] / (max(flops / (peak[dt] * 1e9), traffic / (bw * 1e9)) * 1e3)
    table = pd.DataFrame(rows)
    table["meets_floor"] = table["ratio"] <= 1.1 * table["floor"]  # within 10 %: a tie
    cols = ["net", "filters", "dtype", "batch", "genbound_ms", "torch_ms", "torch_way", "ratio", "floor",
            "meets_floor", "gflops", "pct_peak", "gbytes_s", "limit", "x_limit"]
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 3):
        print(table[cols].to_string(index=False))
        extra = [c for c in table.columns if c.startswith("torch_") and c.endswith("_ms") and c != "torch_ms"]
        print(table[["net", "filters", "dtype", "batch"] + extra].to_string(index=False))
    comp = None
    if not args.no_compile:
        comp = _common.compile_times()
        print(f"numba compile (digits nets, both dtypes, step + HVP, fresh processes): cold {comp['cold']:.1f} s "
              f"({comp['cold_cpu']:.1f} s CPU), warm {comp['warm']:.1f} s ({comp['warm_cpu']:.1f} s CPU); import "
              f"genbound + first rank-1 step: {comp['first_step_cold']:.1f} s cold, {comp['first_step_warm']:.2f} s "
              f"warm")
    print(f"load at end {_common.load():.2f}")
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(f"Machine: {_common.machine()}; {args.threads} threads.\n\n")
            fh.write(f"numpy matmul peak: float32 {peak['float32']:.0f} GFLOP/s, float64 {peak['float64']:.0f} "
                     f"GFLOP/s; copy bandwidth {bw:.1f} GB/s.\n\n")
            fh.write(_common.markdown(table[cols]) + "\n")
            if comp:
                fh.write(f"\nnumba compile: cold {comp['cold']:.1f} s ({comp['cold_cpu']:.1f} s CPU), warm "
                         f"{comp['warm']:.1f} s; import + first step {comp['first_step_cold']:.1f} s cold, "
                         f"{comp['first_step_warm']:.2f} s warm.\n")
    return table


if __name__ == "__main__":
    main()
