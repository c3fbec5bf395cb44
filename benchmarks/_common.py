"""Shared helpers of the benchmarks: machine description, peaks, FLOP and memory-traffic models, timing."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

NETS = ("digits", "mnist")


def machine():
    """One line describing the CPU, its core count and the library versions."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
        model = fields["Model name"]
        model += f" (family {fields.get('CPU family', '?')}, model {fields.get('Model', '?')}"
        model += ", AVX-512)" if "avx512f" in fields.get("Flags", "") else ")"
    except (OSError, subprocess.CalledProcessError, KeyError):
        pass
    import numba

    versions = f"numpy {np.__version__}, numba {numba.__version__}"
    try:
        import torch

        versions += f", torch {torch.__version__}"
    except ImportError:
        pass
    return f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}, {versions}"


def load():
    """1-minute load average (other processes make timings noisy)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def median_time(fn, reps, pause=0.0):
    """Median wall time (s) of ``fn()`` over ``reps`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_peak(dtype, n=2048, reps=5):
    """GFLOP/s of numpy's matmul (BLAS, default threads) on n x n matrices: the machine's practical peak."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    best = min(_timed(lambda: np.matmul(a, b, out=c)) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def bandwidth(mbytes=512, reps=5):
    """GB/s of a large numpy copy (bytes read plus bytes written, per second)."""
    src = np.ones(mbytes * 2**20 // 8)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(reps))
    return 2 * src.nbytes / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def step_model(model, batch):
    """FLOPs and memory traffic (bytes) of one training step (forward, cross-entropy, backward).

    FLOPs count 2 per multiply-add: each convolution's forward, weight gradient and (except for the first
    layer) input gradient; for CP layers the channel mix and the two 1-D passes at the input resolution.
    Traffic counts each activation read or written once per use, as if nothing stayed in cache between
    layers: forward reads the input and writes the output (plus ReLU masks and max-pool argmaxes); backward
    reads the input, the output gradient and the masks, and writes the input gradient. It is the memory
    traffic a layer-by-layer engine cannot avoid, a lower bound for memory-bound layers.
    """
    from genbound.nn import Conv2d, CPConv2d, Dense, MaxPool2d, ReLU

    item = np.dtype(model.dtype).itemsize
    shape = model.input_shape
    flops = 0.0
    traffic = 0.0
    for i, layer in enumerate(model.layers):
        out = layer.output_shape(shape)
        n_in, n_out = batch * np.prod(shape), batch * np.prod(out)
        passes = 2 if i > 0 else 1  # weight gradient, plus input gradient after the first layer
        if isinstance(layer, Conv2d):
            flops += 2 * n_out * layer.in_channels * layer.kernel_size**2 * (1 + passes)
            traffic += item * (2 * n_in + n_out + n_out + (n_in if i > 0 else 0))
        elif isinstance(layer, CPConv2d):
            c, k, r = layer.in_channels, layer.kernel_size, layer.rank
            per_out = 2 * r * (c * np.prod(shape[1:]) / np.prod(out[1:]) + 2 * k)
            flops += n_out * per_out * (1 + passes)
            traffic += item * (2 * n_in + n_out + n_out + (n_in if i > 0 else 0))
        elif isinstance(layer, Dense):
            flops += 2 * batch * layer.in_features * layer.out_features * (1 + passes)
            traffic += item * 2 * n_in
        elif isinstance(layer, ReLU):
            traffic += item * (n_in + n_out + n_out + n_in) + 2 * n_in  # masks written and read (bytes)
        elif isinstance(layer, MaxPool2d):
            traffic += item * (n_in + n_out + n_out + n_in) + 2 * 4 * n_out  # argmax indices (int32)
        shape = out
    return flops, traffic


def compile_times(timeout=1800):
    """Seconds to import genbound and run one training step and one HVP of the digits networks (full and
    rank 1, float32 and float64), in fresh processes: on a cold numba cache (a new empty cache directory,
    so every kernel compiles) and then warm (the same directory, now filled).

    Returns a dict: cold, warm (whole scripts, wall seconds), cold_cpu, warm_cpu (their CPU seconds, which
    other processes on the machine disturb less), first_step_cold, first_step_warm (import genbound +
    building the digits rank-1 network + its first training step).
    """
    import resource

    script = textwrap.dedent("""
        import time
        t0 = time.perf_counter()
        import numpy as np
        import genbound as gb
        m = gb.nn.reference_cnn("digits", rank=1, seed=0)
        x = np.random.default_rng(0).normal(size=(64, 1, 8, 8)); y = np.arange(64) % 10
        m.loss_and_grad(x, y)
        first = time.perf_counter() - t0
        for rank in (None, 1):
            for dtype in (np.float64, np.float32):
                m = gb.nn.reference_cnn("digits", rank=rank, seed=0, dtype=dtype)
                m.loss_and_grad(x, y)
                m.hvp(x, y, np.ones(m.n_params))
        print(first, time.perf_counter() - t0)
    """)
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                 timeout=timeout, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            first, total = map(float, res.stdout.split())
            out[label] = total
            out[f"{label}_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            out[f"first_step_{label}"] = first
    return out


def markdown(table, floatfmt="{:.3g}"):
    """A pandas DataFrame as a markdown table (without the optional tabulate dependency)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return floatfmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
