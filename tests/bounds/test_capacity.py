"""Tests of genbound.bounds.capacity: parameter count, CP manifold dimension, Hessian effective dimension."""
import numpy as np
import pytest

import genbound as gb
from genbound.bounds import CAPACITY_METHODS, capacity_table, effective_capacity, layer_summary
from genbound.nn import Conv2d, CPConv2d, Dense, GlobalAvgPool, MaxPool2d, ReLU, Sequential


def tiny_model(seed=0, rank=1):
    """87 parameters: a full conv, a CP conv and a dense layer (every layer kind)."""
    return Sequential([Conv2d(1, 2, 3, padding=1), ReLU(), MaxPool2d(2), CPConv2d(2, 3, 3, rank=rank, padding=1),
                       ReLU(), GlobalAvgPool(), Dense(3, 4)], seed=seed, input_shape=(1, 8, 8))


def tiny_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)), rng.integers(0, 4, n)


def closed_form_manifold(model):
    """Sum over filters of (C + kh + kw - 2) for rank-1 CP layers, + biases; full layers: parameter count."""
    total = 0
    for i, layer in enumerate(model.layers):
        if isinstance(layer, CPConv2d):
            assert layer.rank == 1
            k = layer.kernel_size
            total += layer.out_channels * (layer.in_channels + k + k - 2) + layer.out_channels
        else:
            total += sum(model.params[key].size for key in model.layer_params(i))
    return total


# ---------------------------------------------------------------- params

@pytest.mark.parametrize("name,rank", [("digits_gap", None), ("digits_gap", 1), ("digits_gap", 2), ("digits", 1),
                                       ("digits", None)])
def test_params_equals_n_params_and_layer_sum(name, rank):
    model = gb.nn.reference_cnn(name, rank=rank)
    cap = effective_capacity(model, method="params")
    assert cap.total == model.n_params
    assert cap.per_layer["N"].sum() == model.n_params
    assert cap.per_layer["params"].sum() == model.n_params
    # closed form per layer
    for row, (_, layer_row) in zip(cap.per_layer.itertuples(), layer_summary(model).iterrows()):
        layer = model.layers[row.layer]
        if isinstance(layer, CPConv2d):
            k = layer.kernel_size
            expected = layer.out_channels * (layer.rank * (layer.in_channels + 2 * k) + 1)
        elif isinstance(layer, Conv2d):
            expected = layer.out_channels * (layer.in_channels * layer.kernel_size ** 2 + 1)
        else:
            expected = layer.out_features * (layer.in_features + 1)
        assert row.N == expected == layer_row["params"]


def test_reference_counts():
    assert effective_capacity(gb.nn.reference_cnn("digits_gap"), method="params").total == 5130
    assert effective_capacity(gb.nn.reference_cnn("digits_gap", rank=1), method="params").total == 1194


# ---------------------------------------------------------------- manifold

@pytest.mark.parametrize("name,width", [("digits_gap", 1.0), ("digits", 1.0), ("digits_gap", 0.5)])
def test_manifold_rank1_closed_form(name, width):
    model = gb.nn.reference_cnn(name, rank=1, width=width)
    cap = effective_capacity(model, method="manifold")
    assert cap.total == closed_form_manifold(model)
    assert cap.per_layer["N"].sum() == cap.total
    assert 0 < cap.tol < 1e-10
    assert effective_capacity(model, method="manifold", at="model").total == cap.total


def test_manifold_digits_gap_rank1_value():
    # 16 (1+3+3-2) + 16 + 32 (16+3+3-2) + 32 + 330
    assert effective_capacity(gb.nn.reference_cnn("digits_gap", rank=1), method="manifold").total == 1098


def test_manifold_full_filters_is_params():
    model = gb.nn.reference_cnn("digits_gap")
    assert effective_capacity(model, method="manifold").total == model.n_params


def test_manifold_higher_rank_generic_and_defective():
    model = gb.nn.reference_cnn("digits_gap", rank=2)
    per = effective_capacity(model, method="manifold").per_layer.set_index("layer")["N"]
    # C = 1: rank-2 3x3 matrices form the determinant hypersurface, dimension 8 (not min(2*5, 9) = 9)
    assert per[0] == 16 * 8 + 16
    assert per[3] == 32 * min(2 * (16 + 3 + 3 - 2), 144) + 32


def test_manifold_counts_degenerate_filters_at_model_point():
    model = tiny_model()
    model.params["3.p"][0] = 0.0  # filter 0 is the zero tensor: its Jacobian has rank C, not C + kh + kw - 2
    generic = effective_capacity(model, method="manifold").total
    at_model = effective_capacity(model, method="manifold", at="model").total
    assert at_model < generic
    # a huge tolerance leaves only the biases and the full layers
    assert (effective_capacity(model, method="manifold", at="model", tol=1e6).total
            == generic - 3 * (2 + 3 + 3 - 2))


# ---------------------------------------------------------------- hessian

def _fd_hessian(model, x, y, h=1e-5):
    """Dense Hessian by central differences of exact gradients: independent of the HVP code."""
    w = model.get_flat()
    n = w.size
    H = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        model.set_flat(w + e)
        gp = model.loss_and_grad(x, y, flat=True)[1]
        model.set_flat(w - e)
        gm = model.loss_and_grad(x, y, flat=True)[1]
        H[:, j] = (gp - gm) / (2 * h)
    model.set_flat(w)
    return 0.5 * (H + H.T)


@pytest.fixture(scope="module")
def trained_tiny():
    model = tiny_model()
    x, y = tiny_data()
    for _ in range(60):
        _, g = model.loss_and_grad(x, y, flat=True)
        model.set_flat(model.get_flat() - 0.5 * g)
    lam = np.linalg.eigvalsh(_fd_hessian(model, x, y))
    return model, (x, y), lam


@pytest.mark.parametrize("z", [1e-3, 1.0])
def test_hessian_dense_matches_finite_difference_eigh(trained_tiny, z):
    model, data, lam = trained_tiny
    expected = float(np.sum(np.where(lam > 0, lam / (lam + z), 0.0)))
    cap = effective_capacity(model, data, method="hessian", z=z)
    assert cap.info["complete"]
    assert cap.total == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert cap.per_layer["N"].sum() == pytest.approx(cap.total, rel=1e-10)
    assert cap.z == z


def test_hessian_negative_eigenvalues_ignored(trained_tiny):
    model, data, lam = trained_tiny
    cap = effective_capacity(model, data, method="hessian", z=0.01)
    assert cap.info["n_negative"] == int(np.sum(cap.info["eigenvalues"] < 0))
    assert cap.total <= np.sum(lam > 0) + 1e-9


def test_hessian_decreasing_in_z(trained_tiny):
    model, data, _ = trained_tiny
    values = [effective_capacity(model, data, method="hessian", z=z).total for z in (1e-4, 0.03, 10)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[0] <= model.n_params


def test_hessian_lanczos_top_k_brackets_dense(trained_tiny):
    model, data, _ = trained_tiny
    full = effective_capacity(model, data, method="hessian", z=0.01)
    dense = full.total
    top = effective_capacity(model, data, method="hessian", z=0.01, dense_max=0, k=10, eig_tol=1e-8)
    assert not top.info["complete"] and top.info["heuristic"]
    # the reported N is the upper end of the bracket, the pessimistic side, and the bracket holds the dense N
    assert top.total == top.info["upper"]
    assert top.info["lower"] <= dense + 1e-6 <= top.total + 2e-6
    # Lanczos found the 10 largest eigenvalues of the dense spectrum: the same top-10 contribution
    lam = np.sort(full.info["eigenvalues"])[::-1][:10]
    assert np.allclose(np.sort(top.info["eigenvalues"])[::-1], lam, rtol=1e-6, atol=1e-9)
    assert top.info["lower"] == pytest.approx(float(np.sum(lam / (lam + 0.01))), rel=1e-6)
    # upper = top-10 part + the n - 10 others at the 10th eigenvalue (residuals ~ 0 at eig_tol 1e-8)
    rest = (model.n_params - 10) * lam[-1] / (lam[-1] + 0.01)
    assert top.total == pytest.approx(float(np.sum(lam / (lam + 0.01))) + rest, rel=1e-5)
    # per-layer shares sum to the reported total
    assert top.per_layer["N"].sum() == pytest.approx(top.total, rel=1e-9)


# ---------------------------------------------------------------- table

def test_capacity_table_reference_name():
    table = capacity_table("digits_gap", ranks=[None, 1, 2], m=1437)
    assert list(table["rank"]) == ["full", 1, 2]
    assert list(table["params"]) == list(table["n_params"]) == [5130, 1194, 2010]
    assert (table["manifold"] <= table["params"]).all()
    assert table["sqrt(params/m)"].iloc[0] == pytest.approx(np.sqrt(5130 / 1437))


def test_capacity_table_models_and_hessian(trained_tiny):
    model, data, _ = trained_tiny
    table = capacity_table({"tiny": model}, methods=CAPACITY_METHODS, data=data, z=0.1)
    assert table.shape[0] == 1 and table["rank"].iloc[0] == 1
    assert 0 < table["hessian"].iloc[0] < table["manifold"].iloc[0] <= table["params"].iloc[0]
    single = capacity_table(model)
    assert single["params"].iloc[0] == model.n_params


# ---------------------------------------------------------------- bad input

def test_bad_input_names_the_argument():
    model = tiny_model()
    with pytest.raises(TypeError, match="^model"):
        effective_capacity("digits_gap", method="params")
    with pytest.raises(ValueError, match="^method"):
        effective_capacity(model, method="flatness")
    with pytest.raises(ValueError, match="^data"):
        effective_capacity(model, method="hessian")
    with pytest.raises(ValueError, match="^z"):
        effective_capacity(model, tiny_data(), method="hessian", z=0.0)
    with pytest.raises(TypeError, match="^data"):
        effective_capacity(model, "manifold")
    with pytest.raises(ValueError, match="^at"):
        effective_capacity(model, method="manifold", at="somewhere")
    with pytest.raises(ValueError, match="^methods"):
        capacity_table("digits_gap", methods=["params", "vc"])
    with pytest.raises(TypeError, match="^model_or_name"):
        capacity_table(3.0)
    with pytest.raises(ValueError, match="^m"):
        capacity_table("digits_gap", ranks=[1], m=0)
    with pytest.raises(ValueError, match="^name"):
        capacity_table("cifar", ranks=[1])
