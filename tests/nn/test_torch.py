"""PyTorch interchange: to_torch and from_torch give the same logits and gradients to 1e-12 in float64."""
from __future__ import annotations

import numpy as np
import pytest

import genbound as gb

torch = pytest.importorskip("torch")

TOL = 1e-12


def _batch(n=7, side=8, channels=1):
    rng = np.random.default_rng(5)
    return rng.normal(size=(n, channels, side, side)), np.arange(n) % 10


def _torch_loss_and_grads(module, x, y):
    module.zero_grad()
    logits = module(torch.from_numpy(x))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    grads = {name: p.grad.detach().numpy().copy() for name, p in module.named_parameters()}
    return logits.detach().numpy(), float(loss.detach()), grads


def _assert_same(model, module, x, y):
    logits_t, loss_t, grads_t = _torch_loss_and_grads(module, x, y)
    np.testing.assert_allclose(model.forward(x), logits_t, rtol=TOL, atol=TOL)
    loss, grads = model.loss_and_grad(x, y)
    assert abs(loss - loss_t) <= TOL * max(1.0, abs(loss))
    assert set(grads) == set(grads_t)
    for key in grads:
        scale = max(1.0, float(np.abs(grads_t[key]).max()))
        np.testing.assert_allclose(grads[key], grads_t[key], rtol=0, atol=TOL * scale, err_msg=key)


def _spread(model, seed=0):
    """Give every parameter (biases included) a non-trivial value."""
    rng = np.random.default_rng(seed)
    model.set_flat(model.get_flat() + 0.1 * rng.normal(size=model.n_params))
    return model


@pytest.mark.parametrize("name", ["digits", "digits_gap"])
@pytest.mark.parametrize("rank", [None, 1, 3])
def test_to_torch_matches_logits_and_gradients(name, rank):
    model = _spread(gb.nn.reference_cnn(name, rank=rank, seed=1, width=0.5))
    module = gb.nn.to_torch(model)
    assert [k for k, _ in module.named_parameters()] == list(model.params)
    sd = module.state_dict()
    assert all(np.array_equal(sd[k].numpy(), v) for k, v in model.state_dict().items())
    x, y = _batch()
    _assert_same(model, module, x, y)


@pytest.mark.parametrize("name", ["digits", "digits_gap"])
def test_from_to_torch_round_trip(name):
    model = _spread(gb.nn.reference_cnn(name, rank=2, seed=2, width=0.5))
    back = gb.nn.from_torch(gb.nn.to_torch(model), input_shape=(1, 8, 8))
    assert repr(back) == repr(model)
    assert np.array_equal(back.get_flat(), model.get_flat())


def _plain_torch_net():
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(5, 6, (3, 3), stride=(1, 1), padding=(1, 1)), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(6, 7, 3, padding=1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(7, 10),
    ).double()


def test_from_torch_matches_a_plain_torch_model():
    module = _plain_torch_net()
    model = gb.nn.from_torch(module, input_shape=(2, 8, 8))
    assert isinstance(model.layers[8], gb.nn.GlobalAvgPool) and isinstance(model.layers[5], gb.nn.AvgPool2d)
    assert model.dtype == np.float64 and model.seed is None
    assert np.all(model.params["6.bias"] == 0)  # no bias in torch: a zero bias here
    x, y = _batch(channels=2)
    logits_t, loss_t, grads_t = _torch_loss_and_grads(module, x, y)
    np.testing.assert_allclose(model.forward(x), logits_t, rtol=TOL, atol=TOL)
    loss, grads = model.loss_and_grad(x, y)
    assert abs(loss - loss_t) <= TOL
    for key, g in grads_t.items():
        np.testing.assert_allclose(grads[key], g, rtol=0, atol=TOL * max(1.0, np.abs(g).max()), err_msg=key)
    # and the way back: a plain torch model loads genbound's state_dict of a full model as it is
    fresh = _plain_torch_net()
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    sd = {k: torch.from_numpy(v) for k, v in model.state_dict().items() if k != "6.bias"}
    fresh.load_state_dict(sd)
    np.testing.assert_allclose(fresh(torch.from_numpy(x)).detach().numpy(), model.forward(x), rtol=TOL, atol=TOL)


def test_full_export_of_a_cp_model_to_plain_torch():
    model = _spread(gb.nn.reference_cnn("digits_gap", rank=2, seed=3, width=0.5))
    full = model.to_full()
    nn = torch.nn
    plain = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                          nn.ReLU(), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), nn.Linear(16, 10)).double()
    plain.load_state_dict({k: torch.from_numpy(v) for k, v in full.state_dict().items()})
    x, _ = _batch()
    np.testing.assert_allclose(plain(torch.from_numpy(x)).detach().numpy(), model.forward(x), rtol=TOL, atol=TOL)


def test_float32_models_export_as_float32():
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0, dtype=np.float32, width=0.5)
    module = gb.nn.to_torch(model)
    assert all(p.dtype == torch.float32 for p in module.parameters())
    back = gb.nn.from_torch(module, input_shape=(1, 8, 8))
    assert back.dtype == np.float32 and np.array_equal(back.get_flat(), model.get_flat())
    x, _ = _batch()
    out = module(torch.from_numpy(x.astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(model.forward(x), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad,exc,match", [
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, dilation=2).double()), ValueError, r"\[0\] Conv2d"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, groups=2).double()), ValueError, r"\[0\] Conv2d"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, (3, 1)).double()), ValueError, "kernel_size along H and W"),
    (lambda: torch.nn.Sequential(torch.nn.MaxPool2d(2, padding=1)), ValueError, r"\[0\] MaxPool2d"),
    (lambda: torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2)), ValueError, "output size 1"),
    (lambda: torch.nn.Sequential(torch.nn.Tanh()), TypeError, r"\[0\] Tanh: no genbound layer"),
    (lambda: torch.nn.Linear(2, 3), TypeError, "module: expected a torch.nn.Sequential"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3).half()), TypeError, "module dtype"),
])
def test_from_torch_refuses_what_it_cannot_represent(bad, exc, match):
    with pytest.raises(exc, match=match):
        gb.nn.from_torch(bad(), input_shape=(1, 8, 8))


def test_to_torch_refuses_non_models_and_nan():
    with pytest.raises(TypeError, match="model: expected a genbound.nn.Sequential"):
        gb.nn.to_torch(torch.nn.ReLU())
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0, width=0.5)
    model.params["0.p"][0] = np.nan
    with pytest.raises(ValueError, match=r"param '0\.p'"):
        gb.nn.to_torch(model)
