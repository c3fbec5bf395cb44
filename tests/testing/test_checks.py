"""check_grads and check_layer_tangents: they pass on correct rules, find planted wrong rules and name them,
cost the same whatever the parameter count, and handle unusual inputs."""
import pathlib
import re

import numpy as np
import pytest

import genbound as gb
from genbound.nn import Conv2d, CPConv2d, Dense, ReLU
from genbound.testing import check_grads, check_layer_tangents
from genbound.testing.strategies import normal_array


def _x(seed=0, shape=(2, 2, 5, 5)):
    return normal_array(seed, shape)


def _model(dtype=np.float64, relu=ReLU):
    layers = [CPConv2d(1, 3, 3, rank=2, padding=1), relu(), gb.nn.MaxPool2d(2), Conv2d(3, 2, 3, padding=1), relu(),
              gb.nn.GlobalAvgPool(), Dense(2, 3)]
    return gb.nn.Sequential(layers, seed=1, dtype=dtype, input_shape=(1, 6, 6))


def _data(n=4):
    return normal_array(3, (n, 1, 6, 6)), np.arange(n) % 3


# ----- planted wrong rules -----------------------------------------------------------------------------------

class ScaledReLU(ReLU):
    """ReLU whose backward is off by a factor 1.01."""

    def backward(self, dy, cache, need_dx=True):
        dx, grads = super().backward(dy, cache, need_dx)
        return dx * 1.01, grads


class TransposedDense(Dense):
    """Dense returning the transpose of its weight gradient (square layers: same shape, wrong values)."""

    def backward(self, dy, cache, need_dx=True):
        dx, grads = super().backward(dy, cache, need_dx)
        return dx, {**grads, "weight": grads["weight"].T.copy()}


class BiaslessTangentConv(Conv2d):
    """Conv2d whose jvp forgets the bias tangent."""

    def jvp(self, rx, tparams, cache):
        return super().jvp(rx, {**tparams, "bias": np.zeros_like(tparams["bias"])}, cache)


class WrongSecondOrderCP(CPConv2d):
    """CPConv2d whose backward_jvp scales the tangent of the q gradient."""

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        rdx, rgrads = super().backward_jvp(dy, rdy, cache, tcache, tparams, need_dx)
        return rdx, {**rgrads, "q": rgrads["q"] * 1.001}


class Float32OnlyBug(Dense):
    """Dense whose float32 backward is off by 1e-3 (its float64 rule is right)."""

    def backward(self, dy, cache, need_dx=True):
        dx, grads = super().backward(dy, cache, need_dx)
        if dy.dtype == np.float32:
            grads = {**grads, "weight": grads["weight"] * np.float32(1.001)}
        return dx, grads


def test_wrong_relu_backward_is_named():
    with pytest.raises(AssertionError, match=r"\[rev\] input x of ScaledReLU\(\)"):
        check_grads(ScaledReLU(), _x())


def test_wrong_relu_backward_inside_a_model_names_parameters_and_the_layer():
    with pytest.raises(AssertionError) as info:
        check_grads(_model(relu=ScaledReLU), _data())
    msg = str(info.value)
    assert "[rev] parameter 'p' of layer 0 CPConv2d" in msg  # gradients below the wrong ReLU are wrong
    assert "6.weight" not in msg.split("The layers")[0]  # the dense layer above every ReLU is right
    notes = msg.split("The layers' own rules")[1]
    assert "layer 1: input x of ScaledReLU()" in notes and "layer 4: input x of ScaledReLU()" in notes
    assert "MaxPool2d" not in notes and "Dense" not in notes and "CPConv2d" not in notes  # the right ones pass


def test_transposed_dense_gradient_is_named():
    layer = TransposedDense(4, 4).initialize(0)
    with pytest.raises(AssertionError, match=r"\[rev\] parameter 'weight' of TransposedDense Dense\(4, 4\)") as info:
        check_grads(layer, normal_array(1, (3, 4)))
    assert "'bias'" not in str(info.value)


def test_wrong_jvp_is_named_by_check_grads_and_check_layer_tangents():
    layer = BiaslessTangentConv(2, 3, 3, padding=1).initialize(0)
    x = _x()
    check_grads(layer, x, modes=("rev",))  # its backward is right
    with pytest.raises(AssertionError, match=r"\[fwd\] parameter 'bias' of BiaslessTangentConv Conv2d") as info:
        check_grads(layer, x, modes=("fwd",))
    assert "'weight'" not in str(info.value)
    with pytest.raises(AssertionError, match=r"ry of BiaslessTangentConv") as info:
        check_layer_tangents(layer, x)
    assert "with only the tangent of 'bias': ry" in str(info.value)
    assert "only the tangent of 'weight'" not in str(info.value)


def test_wrong_backward_jvp_fails_order_2_only():
    layer = WrongSecondOrderCP(2, 3, 3, rank=2, padding=1).initialize(0)
    x = _x()
    check_grads(layer, x, order=1)
    with pytest.raises(AssertionError, match=r"\[hvp\] .*tangent of the gradient block d/dq"):
        check_grads(layer, x, order=2)
    with pytest.raises(AssertionError, match=r"rgrads\[q\]"):
        check_layer_tangents(layer, x)


def test_wrong_backward_jvp_inside_a_model_fails_the_hvp_check():
    layers = [WrongSecondOrderCP(1, 2, 3, rank=1, padding=1), ReLU(), gb.nn.GlobalAvgPool(), Dense(2, 3)]
    model = gb.nn.Sequential(layers, seed=0, input_shape=(1, 6, 6))
    check_grads(model, _data(), order=1)
    with pytest.raises(AssertionError, match=r"\[hvp\] parameter 'q' of layer 0.*block '0.q'"):
        check_grads(model, _data(), order=2)


def test_float32_rules_are_held_to_the_float64_rule():
    layer = Float32OnlyBug(3, 2).initialize(0, dtype=np.float32)
    with pytest.raises(AssertionError, match=r"'weight'.*vs the float64 rule"):
        check_grads(layer, normal_array(0, (4, 3)))
    errors = check_grads(Float32OnlyBug(3, 2).initialize(0), normal_array(0, (4, 3)))  # float64: right
    assert max(errors.values()) < 1e-8


def test_sensitivity_and_tolerance():
    """A relative gradient error of 1e-4 is found at rtol 1e-6; one of 1e-10 is not (the check is not noise)."""

    def scaled(factor):
        class Scaled(Dense):
            def backward(self, dy, cache, need_dx=True):
                dx, grads = super().backward(dy, cache, need_dx)
                return dx, {**grads, "bias": grads["bias"] * factor}
        return Scaled(5, 4).initialize(2)

    x = normal_array(1, (3, 5))
    with pytest.raises(AssertionError, match="'bias'"):
        check_grads(scaled(1 + 1e-4), x)
    assert check_grads(scaled(1 + 1e-10), x)[("rev", "bias")] < 1e-6


# ----- correct rules pass, models ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_models_pass_at_order_2(dtype):
    model = _model(dtype)
    errors = check_grads(model, _data(), order=2)
    assert set(k[:2] for k in errors) >= {(c, name) for c in ("rev", "fwd", "hvp") for name in model.params}
    plain = [e for k, e in errors.items() if k[-1] != "float64"]
    assert max(plain) < 1e-7
    if dtype == np.float32:
        assert 0 < max(e for k, e in errors.items() if k[-1] == "float64") < 1e-4


def test_reference_network_and_dataset_input():
    data = gb.data.load_digits(seed=0).subset(np.arange(6))
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0)
    errors = check_grads(model, data, modes=("rev",), n_directions=1)
    assert {k[0] for k in errors} == {"rev"} and len(errors) == len(model.params)


def test_parameters_are_restored_even_after_a_failure():
    model = _model(relu=ScaledReLU)
    w = model.get_flat()
    with pytest.raises(AssertionError):
        check_grads(model, _data(), order=2)
    assert np.array_equal(model.get_flat(), w)
    layer = TransposedDense(3, 3).initialize(0)
    before = {k: v.copy() for k, v in layer.params.items()}
    with pytest.raises(AssertionError):
        check_grads(layer, normal_array(0, (2, 3)), order=2)
    assert all(np.array_equal(layer.params[k], before[k]) for k in before)


def test_cost_does_not_grow_with_the_parameter_count():
    calls = []

    class Counting(Dense):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    counts = []
    for n_in, n_out in ((2, 2), (60, 40)):
        calls.clear()
        check_grads(Counting(n_in, n_out).initialize(0), normal_array(0, (3, n_in)), order=2, n_directions=2)
        counts.append(len(calls))
    assert counts[0] == counts[1]


# ----- functions ---------------------------------------------------------------------------------------------

def test_a_users_function_and_its_hvp():
    def f(x):
        return float(np.sum(np.sin(x))), np.cos(x)

    x = normal_array(0, (4, 3))
    errors = check_grads(f, x, order=2, hvp=lambda x, v: -np.sin(x) * v)
    assert max(errors.values()) < 1e-8
    with pytest.raises(AssertionError, match="the gradient of f"):
        check_grads(lambda x: (float(np.sum(np.sin(x))), np.cos(x) * 1.001), x)
    with pytest.raises(AssertionError, match="Hessian-vector product"):
        check_grads(f, x, order=2, hvp=lambda x, v: np.sin(x) * v)
    with pytest.raises(ValueError, match="hvp"):
        check_grads(f, x, order=2)
    with pytest.raises(TypeError, match="fn"):
        check_grads(lambda x: 1.0, x)


# ----- inputs ------------------------------------------------------------------------------------------------

def test_integer_fortran_and_read_only_inputs():
    layer = Conv2d(2, 2, 3, padding=1).initialize(0)
    x = normal_array(0, (2, 2, 5, 5))
    ref = check_grads(layer, x, order=2)
    fortran = np.asfortranarray(x)
    frozen = x.copy()
    frozen.flags.writeable = False
    assert check_grads(layer, fortran, order=2) == ref
    assert check_grads(layer, frozen, order=2) == ref
    assert check_layer_tangents(layer, frozen) == check_layer_tangents(layer, x)
    ints = np.arange(50).reshape(2, 1, 5, 5) % 7 - 3
    assert max(check_grads(Conv2d(1, 2, 3).initialize(0), ints).values()) < 1e-6
    for p in layer.params.values():
        p.flags.writeable = False  # read-only parameters are never written either
    assert check_grads(layer, x, order=2) == ref
    model = _model()
    xs, ys = _data()
    xs.flags.writeable = False
    check_grads(model, (np.asfortranarray(xs), ys.astype(np.int32)))


def test_bad_arguments_are_refused_by_name():
    layer = Dense(2, 2).initialize(0)
    x = normal_array(0, (3, 2))
    with pytest.raises(ValueError, match="modes"):
        check_grads(layer, x, modes=("backward",))
    with pytest.raises(ValueError, match="order"):
        check_grads(layer, x, order=3)
    with pytest.raises(ValueError, match="n_directions"):
        check_grads(layer, x, n_directions=0)
    with pytest.raises(ValueError, match="rtol"):
        check_grads(layer, x, rtol=-1.0)
    with pytest.raises(TypeError, match="fn_or_model"):
        check_grads(3, x)
    with pytest.raises(TypeError, match="x"):
        check_grads(layer, np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="x"):
        check_grads(layer, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="initialize"):
        check_grads(Dense(2, 2), x)
    with pytest.raises(TypeError, match="layer"):
        check_layer_tangents(lambda x: x, x)


# ----- the documentation page --------------------------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _page_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", (ROOT / "docs" / "testing.md").read_text(), flags=re.S)


def test_the_testing_page_shows_the_user_suite_verbatim():
    source = (ROOT / "tests" / "testing" / "test_user_suite_example.py").read_text()
    assert source in _page_blocks("python")


def test_the_testing_page_shows_a_real_failure_report():
    layers = [Conv2d(1, 2, 3, padding=1), ReLU(), gb.nn.Flatten(), TransposedDense(72, 72), ReLU(), Dense(72, 3)]
    model = gb.nn.Sequential(layers, seed=0, input_shape=(1, 6, 6))
    x = np.random.default_rng(0).normal(size=(4, 1, 6, 6))
    with pytest.raises(AssertionError) as info:
        check_grads(model, (x, [0, 1, 2, 0]))
    assert str(info.value) + "\n" in _page_blocks("text")
