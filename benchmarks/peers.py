"""genbound beside PyHessian, loss-landscapes and TensorLy on the same network, weights and data.

    pip install -e '.[peers]'            # torch, PyHessian, loss-landscapes, TensorLy
    python benchmarks/peers.py --md out.md

The network is the rank-1 ``digits_gap`` reference CNN at half width (474 parameters), trained a few
epochs by genbound, and copied parameter for parameter into a float64 PyTorch module (the CP filters are
rebuilt as full filters there, the way a user of those libraries would). The data are 512 digits training
images. Exact references are independent of both libraries' estimators:

- Hessian: the dense Hessian from PyTorch's double-backward products (``torch.autograd.functional.hessian``)
  in float64, checked against genbound's dense Hessian, and diagonalized by ``numpy.linalg.eigh``;
- slices: the loss evaluated directly at each grid point's weights;
- CP fits: filters planted at rank R (exact optimum 0) and trained full filters (optimum unknown: the
  lower error wins).

Each estimator runs over several seeds; the tables give its error against the reference (median and
spread over seeds) and its time. Timings are wall-clock on whatever machine runs it (noisy on a shared one).
"""
import argparse
import copy
import time
import warnings

import numpy as np
import pandas as pd

import genbound as gb


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# ------------------------------------------------------------------------------------------ the network

def make_problem(n_examples=512, epochs=6, seed=0):
    data = gb.data.load_digits(seed=0, scaling="fixed")
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=seed, width=0.5)
    gb.train(model, data, epochs=epochs, batch_size=64, optimizer=gb.nn.SGD(lr=0.05, momentum=0.9), seed=seed,
             progress=False)
    x, y = data.x_train[:n_examples], data.y_train[:n_examples]
    return model, data, x, y


def torch_twin(model):
    """A float64 PyTorch module computing the same function as a genbound CP ``digits_gap`` network."""
    import torch
    import torch.nn.functional as F

    class CPConv(torch.nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.p = torch.nn.Parameter(torch.tensor(layer.params["p"]))
            self.q = torch.nn.Parameter(torch.tensor(layer.params["q"]))
            self.t = torch.nn.Parameter(torch.tensor(layer.params["t"]))
            self.bias = torch.nn.Parameter(torch.tensor(layer.params["bias"]))
            self.padding = layer.padding

        def forward(self, x):
            w = torch.einsum("orc,orh,orw->ochw", self.p, self.q, self.t)
            return F.conv2d(x, w, self.bias, padding=self.padding)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            L = model.layers
            self.c0, self.c3 = CPConv(L[0]), CPConv(L[3])
            self.fc = torch.nn.Linear(L[6].params["weight"].shape[1], L[6].params["weight"].shape[0]).double()
            with torch.no_grad():
                self.fc.weight.copy_(torch.tensor(L[6].params["weight"]))
                self.fc.bias.copy_(torch.tensor(L[6].params["bias"]))

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c0(x)), 2)
            x = F.relu(self.c3(x)).mean(dim=(2, 3))
            return self.fc(x)

    return Net().double()


def torch_flat(net):
    """The parameter vector of the twin in genbound's order (names and shapes match layer by layer)."""
    return np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])


def set_torch_flat(net, v):
    import torch
    i = 0
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.tensor(v[i:i + p.numel()].reshape(p.shape)))
            i += p.numel()


def torch_dense_hessian(net, x, y):
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    sizes = [p.numel() for _, p in net.named_parameters()]
    xt, yt = torch.tensor(x), torch.tensor(y)

    def loss(v):
        params, i = {}, 0
        for n, s, k in zip(names, shapes, sizes):
            params[n] = v[i:i + k].reshape(s)
            i += k
        return F.cross_entropy(functional_call(net, params, (xt,)), yt)

    v0 = torch.tensor(torch_flat(net))
    return torch.autograd.functional.hessian(loss, v0).numpy()


# ------------------------------------------------------------------------------------------- Hessian

def hessian_rows(model, x, y, seeds, args):
    import torch
    import torch.nn.functional as F

    rows = []
    net = torch_twin(model)
    assert np.allclose(torch_flat(net), model.get_flat(), rtol=0, atol=0)
    with torch.no_grad():
        torch_loss = F.cross_entropy(net(torch.tensor(x)), torch.tensor(y)).item()
    assert abs(torch_loss - model.loss(x, y)) < 1e-12 * max(1.0, torch_loss), (torch_loss, model.loss(x, y))

    H_torch, t_dense_torch = _timed(lambda: torch_dense_hessian(net, x, y))
    H_gb, t_dense_gb = _timed(lambda: gb.landscape.hessian(model, (x, y)))
    agree = np.linalg.norm(H_gb - H_torch) / np.linalg.norm(H_torch)
    H = (H_torch + H_torch.T) / 2
    eig = np.linalg.eigvalsh(H)
    lam_max, lam_min, trace = eig[-1], eig[0], float(np.trace(H))
    ref = dict(n_params=model.n_params, lambda_max=lam_max, lambda_min=lam_min, trace=trace,
               dense_rel_diff_gb_vs_torch=agree, t_dense_torch=t_dense_torch, t_dense_gb=t_dense_gb)

    try:
        from pyhessian import hessian as PyHessian
    except ImportError:
        PyHessian = None

    for s in seeds:
        res, t = _timed(lambda: gb.landscape.top_eigenvalues(model, (x, y), k=1, seed=s))
        rows.append(dict(quantity="top eigenvalue", library="genbound", method="Lanczos (tol 1e-8)", seed=s,
                         value=res.values[0], ref=lam_max, seconds=t, hvps=res.n_hvp))
        res, t = _timed(lambda: gb.landscape.min_eigenvalue(model, (x, y), k=1, seed=s))
        rows.append(dict(quantity="min eigenvalue", library="genbound", method="Lanczos (tol 1e-8)", seed=s,
                         value=res.values[0], ref=lam_min, seconds=t, hvps=res.n_hvp))
        res, t = _timed(lambda: gb.landscape.hessian_trace(model, (x, y), n_probes=100, seed=s))
        rows.append(dict(quantity="trace", library="genbound", method="Hutchinson, 100 probes", seed=s,
                         value=res.estimate, ref=trace, seconds=t, hvps=100, stderr=res.stderr))
        if PyHessian is not None:
            torch.manual_seed(s)
            ph = PyHessian(torch_twin(model), torch.nn.CrossEntropyLoss(), data=(torch.tensor(x), torch.tensor(y)),
                           cuda=False)
            (vals, _), t = _timed(lambda: ph.eigenvalues(maxIter=100, tol=1e-3, top_n=1))
            rows.append(dict(quantity="top eigenvalue", library="PyHessian 0.1", method="power iteration (defaults)",
                             seed=s, value=float(vals[0]), ref=lam_max, seconds=t))
            torch.manual_seed(s)
            tr, t = _timed(lambda: ph.trace(maxIter=100, tol=1e-3))
            rows.append(dict(quantity="trace", library="PyHessian 0.1", method="Hutchinson (defaults)", seed=s,
                             value=float(np.mean(tr)), ref=trace, seconds=t, hvps=len(tr)))
        # PyTorch double-backward HVPs + scipy's ARPACK: what a user without either library would write
        import scipy.sparse.linalg as sla
        from torch.autograd.functional import hvp as torch_hvp

        tnet = torch_twin(model)
        names = [n for n, _ in tnet.named_parameters()]
        xt, yt = torch.tensor(x), torch.tensor(y)
        params = tuple(p.detach() for p in tnet.parameters())

        def f(*ps):
            from torch.func import functional_call
            return F.cross_entropy(functional_call(tnet, dict(zip(names, ps)), (xt,)), yt)

        def matvec(v):
            vs, i = [], 0
            for p in params:
                vs.append(torch.tensor(np.asarray(v).ravel()[i:i + p.numel()].reshape(p.shape)))
                i += p.numel()
            out = torch_hvp(f, params, tuple(vs))[1]
            return np.concatenate([o.numpy().ravel() for o in out])

        op = sla.LinearOperator((model.n_params, model.n_params), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(s).normal(size=model.n_params)
        val, t = _timed(lambda: sla.eigsh(op, k=1, which="LA", v0=v0, tol=1e-8)[0][0])
        rows.append(dict(quantity="top eigenvalue", library="PyTorch + ARPACK", method="double-backward HVP, eigsh",
                         seed=s, value=val, ref=lam_max, seconds=t))
    df = pd.DataFrame(rows)
    df["rel_error"] = (df["value"] - df["ref"]).abs() / abs(lam_max)
    return df, ref


# -------------------------------------------------------------------------------------------- slices

def slice_rows(model, x, y, seeds, steps=11):
    import torch
    import torch.nn.functional as F

    rows = []
    theta = model.get_flat().copy()

    def exact(v):
        with gb.nn.restored(model):
            model.set_flat(v)
            return model.loss(x, y)

    try:
        import loss_landscapes as ll
        import loss_landscapes.metrics as llm
    except ImportError:
        ll = None
    for s in seeds:
        rng = np.random.default_rng(s)
        d1 = gb.landscape.random_direction(model, seed=rng)
        d2 = gb.landscape.random_direction(model, seed=rng)
        scale = 0.25
        # 1-D interpolation from theta to theta + scale d1
        alphas = np.arange(1, steps + 1) / steps
        ref1 = np.array([exact(theta + a * scale * d1) for a in alphas])
        df, t = _timed(lambda: gb.landscape.interpolate(model, (x, y), theta, theta + scale * d1, alphas=alphas))
        rows.append(dict(quantity="1-D interpolation", library="genbound", seed=s,
                         max_abs_error=np.max(np.abs(df["loss"].to_numpy() - ref1)), seconds=t, moved_model=
                         not np.array_equal(model.get_flat(), theta)))
        # 2-D plane theta + i/steps * scale d1 + j/steps * scale d2, i, j = 0..steps-1
        grid = np.arange(steps) / steps
        ref2 = np.array([[exact(theta + a * scale * d1 + b * scale * d2) for b in grid] for a in grid])
        df, t = _timed(lambda: gb.landscape.slice_2d(model, (x, y), d1=scale * d1, d2=scale * d2, alphas=grid,
                                                     betas=grid))
        z = df.pivot_table(index="alpha", columns="beta", values="loss").to_numpy()
        rows.append(dict(quantity="2-D plane", library="genbound", seed=s, max_abs_error=np.max(np.abs(z - ref2)),
                         seconds=t, moved_model=not np.array_equal(model.get_flat(), theta)))
        if ll is None:
            continue
        start = torch_twin(model)
        end1, end2 = torch_twin(model), torch_twin(model)
        set_torch_flat(end1, theta + scale * d1)
        set_torch_flat(end2, theta + scale * d2)
        metric = llm.Loss(F.cross_entropy, torch.tensor(x), torch.tensor(y))
        before = torch_flat(start)
        vals, t = _timed(lambda: ll.linear_interpolation(start, end1, metric, steps=steps, deepcopy_model=False))
        rows.append(dict(quantity="1-D interpolation", library="loss-landscapes 3.0.6", seed=s,
                         max_abs_error=np.max(np.abs(vals - ref1)), seconds=t,
                         moved_model=not np.array_equal(torch_flat(start), before)))
        start = torch_twin(model)
        vals, t = _timed(lambda: ll.planar_interpolation(start, end1, end2, metric, steps=steps, deepcopy_model=True))
        vals = np.asarray(vals)
        odd_even = np.max(np.abs(vals[0::2] - ref2[0::2])), np.max(np.abs(vals[1::2] - ref2[1::2]))
        rows.append(dict(quantity="2-D plane", library="loss-landscapes 3.0.6", seed=s,
                         max_abs_error=np.max(np.abs(vals - ref2)), seconds=t, moved_model=False,
                         note=f"rows 0,2,..: {odd_even[0]:.2g}; rows 1,3,..: {odd_even[1]:.2g}"))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- CP fits

def cp_rows(seeds, ranks=(1, 2, 3)):
    try:
        import tensorly as tl
        from tensorly.decomposition import parafac
        tl.set_backend("numpy")
    except ImportError:
        parafac = None
    rows = []
    full = gb.nn.reference_cnn("digits_gap", rank=None, seed=0, width=0.5)
    data = gb.data.load_digits(seed=0, scaling="fixed")
    gb.train(full, data, epochs=6, batch_size=64, optimizer=gb.nn.SGD(lr=0.05, momentum=0.9), seed=0, progress=False)
    trained = full.params["3.weight"].copy()                     # (16, 8, 3, 3)
    for s in seeds:
        rng = np.random.default_rng(s)
        for R in ranks:
            p, q, t = rng.normal(size=(16, R, 8)), rng.normal(size=(16, R, 3)), rng.normal(size=(16, R, 3))
            planted = gb.factor.reconstruct(p, q, t)
            for kind, W in (("planted rank R", planted), ("trained full filters", trained)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res, sec = _timed(lambda: gb.factor.decompose(W, rank=R, seed=s))
                rows.append(dict(filters=kind, rank=R, library="genbound", seed=s, median_error=np.median(res.errors),
                                 max_error=np.max(res.errors), failed=0, seconds=sec))
                if parafac is None:
                    continue
                errs, failed = [], 0
                start = time.perf_counter()
                for o in range(W.shape[0]):
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            cp = parafac(tl.tensor(W[o]), rank=R, random_state=s, init="random")
                        errs.append(np.linalg.norm(tl.cp_to_tensor(cp) - W[o]) / np.linalg.norm(W[o]))
                    except Exception:                                   # noqa: BLE001 - a failed fit is counted
                        failed += 1
                sec = time.perf_counter() - start
                rows.append(dict(filters=kind, rank=R, library="TensorLy 0.10 parafac", seed=s,
                                 median_error=np.median(errs) if errs else np.nan,
                                 max_error=np.max(errs) if errs else np.nan, failed=failed, seconds=sec))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------- main

def md(df):
    """A DataFrame as a Markdown table (3 significant digits)."""
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "nan" if np.isnan(v) else f"{v:.3g}"
        return str(v)
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def summarize(df, keys, value):
    g = df.groupby(keys, sort=False)[value]
    out = pd.DataFrame({f"{value} median": g.median(), f"{value} min": g.min(), f"{value} max": g.max()})
    out["seconds median"] = df.groupby(keys, sort=False)["seconds"].median()
    return out.reset_index()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--md", help="write the tables as Markdown to this file")
    args = ap.parse_args(argv)
    seeds = list(range(args.seeds))
    import torch
    torch.set_num_threads(1)
    import numba
    numba.set_num_threads(1)

    model, data, x, y = make_problem()
    out = [f"Network: digits_gap, rank-1 filters, width 0.5 ({model.n_params} parameters), 6 epochs of SGD; "
           f"data: {len(y)} digits training images; float64; 1 thread each; seeds {seeds}.", ""]
    hdf, ref = hessian_rows(model, x, y, seeds, args)
    out += [f"Dense Hessian: PyTorch double backward {ref['t_dense_torch']:.2f} s, genbound {ref['t_dense_gb']:.2f} s, "
            f"relative difference {ref['dense_rel_diff_gb_vs_torch']:.1e}; lambda_max {ref['lambda_max']:.6g}, "
            f"lambda_min {ref['lambda_min']:.6g}, trace {ref['trace']:.6g}.", ""]
    out += ["### Hessian", "", md(summarize(hdf, ["quantity", "library", "method"], "rel_error")), ""]
    sdf = slice_rows(model, x, y, seeds)
    s = summarize(sdf, ["quantity", "library"], "max_abs_error")
    s["moved the model"] = sdf.groupby(["quantity", "library"], sort=False)["moved_model"].any().to_numpy()
    out += ["### Slices (max |loss - exact| over the grid)", "", md(s), ""]
    if "note" in sdf:
        out += ["loss-landscapes plane, seed 0: " + str(sdf["note"].dropna().iloc[0]), ""]
    cdf = cp_rows(seeds)
    c = cdf.groupby(["filters", "rank", "library"], sort=False).agg(
        median_error=("median_error", "median"), worst_filter=("max_error", "max"), failed_fits=("failed", "sum"),
        seconds=("seconds", "median")).reset_index()
    out += ["### CP fits of 16 conv filters (8 x 3 x 3), relative error per filter", "",
            md(c), ""]
    text = "\n".join(out)
    print(text)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
