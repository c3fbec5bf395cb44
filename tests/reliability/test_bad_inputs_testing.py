"""Bad inputs to genbound.testing: numerical gradients, relative errors, gradient and HVP checks."""
import numpy as np
import pytest

from genbound import testing as T
from genbound.nn import Conv2d, Dense, GlobalAvgPool, ReLU, Sequential
from tests.reliability import case, check_raises

MODEL = Sequential([Conv2d(1, 2, 3, padding=1), ReLU(), GlobalAvgPool(), Dense(2, 3)], seed=0, input_shape=(1, 4, 4))
RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 1, 4, 4))
Y = np.array([0, 1, 2])
CONV = Conv2d(1, 2, 3).initialize(0)


def read_only():
    a = np.arange(3.0)
    a.flags.writeable = False
    return a


CASES = [
    case(lambda: T.numerical_gradient(lambda: 1.0, np.arange(3)), "numerical_gradient integer x", TypeError, "x"),
    case(lambda: T.numerical_gradient(lambda: 1.0, read_only()), "numerical_gradient read-only x", ValueError,
         "x"),
    case(lambda: T.numerical_gradient(lambda: 1.0, [1.0, 2.0]), "numerical_gradient list x", TypeError, "x"),
    case(lambda: T.numerical_gradient(lambda: 1.0, np.ones(2) + 1j), "numerical_gradient complex x", TypeError,
         "x"),
    case(lambda: T.numerical_gradient(lambda: 1.0, np.ones(2), h=0), "numerical_gradient h=0", ValueError, "h"),
    case(lambda: T.numerical_gradient(3, np.ones(2)), "numerical_gradient f=3", TypeError, "f"),
    case(lambda: T.numerical_gradient(lambda: np.ones(2), np.ones(2)), "numerical_gradient vector f", TypeError,
         "f"),
    case(lambda: T.numerical_gradient(lambda: float("nan"), np.ones(2)), "numerical_gradient NaN f", ValueError,
         "f"),
    case(lambda: T.relative_error(np.ones(3), np.ones((3, 1))), "relative_error (3,) vs (3, 1)", ValueError, "b"),
    case(lambda: T.relative_error(np.ones(3), np.ones(4)), "relative_error (3,) vs (4,)", ValueError, "b"),
    case(lambda: T.relative_error(np.ones(3), 1.0), "relative_error array vs scalar", ValueError, "b"),
    case(lambda: T.relative_error(np.array([np.nan]), np.ones(1)), "relative_error NaN", ValueError, "a"),
    case(lambda: T.relative_error(np.ones(1) + 1j, np.ones(1)), "relative_error complex", TypeError, "a"),
    case(lambda: T.relative_error([[1.0], [1.0, 2.0]], [1.0, 2.0]), "relative_error ragged", ValueError, "a"),
    case(lambda: T.check_layer_grads(Conv2d(1, 2, 3), np.ones((1, 1, 4, 4))), "check_layer_grads unbound layer",
         ValueError, "layer"),
    case(lambda: T.check_layer_grads(3, np.ones((1, 1, 4, 4))), "check_layer_grads layer=3", TypeError, "layer"),
    case(lambda: T.check_layer_grads(CONV, np.full((1, 1, 4, 4), np.nan)), "check_layer_grads NaN x", ValueError,
         "x"),
    case(lambda: T.check_layer_grads(CONV, np.ones((1, 1, 4, 4)) + 1j), "check_layer_grads complex x", TypeError,
         "x"),
    case(lambda: T.check_layer_grads(CONV, RNG.normal(size=(1, 1, 4, 4)), rtol=-1), "check_layer_grads rtol<0",
         ValueError, "rtol"),
    case(lambda: T.check_model_grads(MODEL, 3), "check_model_grads data=3", TypeError, "data"),
    case(lambda: T.check_model_grads(3, (X, Y)), "check_model_grads model=3", TypeError, "model"),
    case(lambda: T.check_model_grads(MODEL, (X, Y), h=0), "check_model_grads h=0", ValueError, "h"),
    case(lambda: T.check_hvp(MODEL, (X, Y), v=np.ones(3)), "check_hvp short v", ValueError, "v"),
    case(lambda: T.check_hvp(MODEL, (X, Y), v=np.full(MODEL.n_params, np.nan)), "check_hvp NaN v", ValueError,
         "v"),
    case(lambda: T.activation_margin(MODEL, np.full((1, 1, 4, 4), np.nan)), "activation_margin NaN x",
         ValueError, "x"),
    case(lambda: T.activation_margin(3, X), "activation_margin model=3", TypeError, "model"),
]


@pytest.mark.parametrize("call, exc, fragment", CASES)
def test_bad_input(call, exc, fragment):
    check_raises(call, exc, fragment)


def test_numerical_gradient_any_layout():
    """Fortran-order and strided arrays are perturbed in place (a copy was perturbed before: zeros)."""
    w = np.arange(6.0).reshape(2, 3)
    for x in (np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.arange(12.0).reshape(2, 6)[:, ::2]):
        g = T.numerical_gradient(lambda: float(np.sum(x**2 * w)), x)
        np.testing.assert_allclose(g, 2 * x * w, rtol=1e-8, atol=1e-6)


def test_check_layer_grads_integer_input_checked_not_blamed():
    """Integer input is converted to the layer's dtype: the check passes instead of blaming the layer."""
    x = np.random.default_rng(1).integers(-3, 4, size=(1, 1, 5, 5))
    errors = T.check_layer_grads(Conv2d(1, 2, 3).initialize(0), x)
    assert max(errors.values()) < 1e-6
