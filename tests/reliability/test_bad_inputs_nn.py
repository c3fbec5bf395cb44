"""Bad inputs to genbound.nn: layers, Sequential, losses, optimizers, reference networks, train."""
import numpy as np
import pytest

import genbound as gb
from genbound.nn import (SGD, Adam, AvgPool2d, Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU,
                         Sequential, log_softmax, reference_cnn, sgd_direction, softmax_cross_entropy)
from tests.reliability import case, check_raises

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 1, 8, 8))
Y = np.array([0, 1])
CONV = Conv2d(1, 2, 3).initialize(0)
CP = CPConv2d(1, 2, 3, rank=2).initialize(0)
DENSE = Dense(4, 3).initialize(0)
_, C_CONV = CONV.forward(X)
_, C_CP = CP.forward(X)
_, C_DENSE = DENSE.forward(np.ones((2, 4)))
_, C_RELU = ReLU().forward(X)
POOL = MaxPool2d(2)
_, C_POOL = POOL.forward(X)
AVG = AvgPool2d(2)
_, C_AVG = AVG.forward(X)
_, C_GAP = GlobalAvgPool().forward(X)
_, C_FLAT = Flatten().forward(X)
MODEL = reference_cnn("digits_gap", rank=1, seed=0)
MODEL32 = reference_cnn("digits_gap", rank=1, seed=0, dtype=np.float32)
N = MODEL.n_params
DATA = gb.data.Dataset(RNG.normal(size=(4, 1, 8, 8)), [0, 1, 2, 3], RNG.normal(size=(2, 1, 8, 8)), [0, 1], classes=10)


def nan_model(value=np.nan):
    """A copy of MODEL whose last bias holds ``value``."""
    m = MODEL.copy()
    m.params["6.bias"][0] = value
    return m


def grads(value=0.0, shape=None):
    return {k: np.full(v.shape if shape is None else shape, value) for k, v in MODEL.params.items()}


def unbound_dense():
    return Dense(2, 2)


TMP = Conv2d(1, 2, 3)

CASES = [
    # ---- layer construction ------------------------------------------------------------------------------
    case(lambda: Conv2d(0, 4, 3), "Conv2d in_channels=0", ValueError, "in_channels"),
    case(lambda: Conv2d(1.5, 4, 3), "Conv2d in_channels=1.5", TypeError, "in_channels"),
    case(lambda: Conv2d(1, True, 3), "Conv2d out_channels=True", TypeError, "out_channels"),
    case(lambda: Conv2d(1, 4, 0), "Conv2d kernel_size=0", ValueError, "kernel_size"),
    case(lambda: Conv2d(1, 4, 3, stride=0), "Conv2d stride=0", ValueError, "stride"),
    case(lambda: Conv2d(1, 4, 3, padding=-1), "Conv2d padding=-1", ValueError, "padding"),
    case(lambda: Conv2d(10**5, 10**5, 3), "Conv2d 1e5 channels (9e10 params)", ValueError, "in_channels"),
    case(lambda: CPConv2d(1, 4, 3, rank=0), "CPConv2d rank=0", ValueError, "rank"),
    case(lambda: CPConv2d(1, 4, 3, rank=2.0), "CPConv2d rank=2.0", TypeError, "rank"),
    case(lambda: CPConv2d(1, 4, 3, update="sgd"), "CPConv2d update='sgd'", ValueError, "update"),
    case(lambda: CPConv2d(16, 32, 3, rank=10**9), "CPConv2d rank=1e9", ValueError, "rank"),
    case(lambda: Dense(0, 3), "Dense in_features=0", ValueError, "in_features"),
    case(lambda: Dense(10**6, 10**6), "Dense 1e6 x 1e6", ValueError, "in_features"),
    case(lambda: MaxPool2d(0), "MaxPool2d kernel_size=0", ValueError, "kernel_size"),
    case(lambda: AvgPool2d(2, stride=0), "AvgPool2d stride=0", ValueError, "stride"),
    # ---- unbound layers, binding -----------------------------------------------------------------------
    case(lambda: Conv2d(1, 2, 3).forward(X), "Conv2d unbound forward", ValueError, "layer: Conv2d"),
    case(lambda: CPConv2d(1, 2, 3).forward(X), "CPConv2d unbound forward", ValueError, "layer: CPConv2d"),
    case(lambda: CPConv2d(1, 2, 3).full_weight(), "CPConv2d unbound full_weight", ValueError, "layer: CPConv2d"),
    case(lambda: Dense(4, 3).forward(np.ones((2, 4))), "Dense unbound forward", ValueError, "layer: Dense"),
    case(lambda: unbound_dense().bind({"weight": [[1.0, 2.0], [3.0, 4.0]], "bias": [0.0, 0.0]}),
         "bind lists", TypeError, "params['weight']"),
    case(lambda: unbound_dense().bind({"weight": np.ones((2, 2), complex), "bias": np.zeros(2, complex)}),
         "bind complex", TypeError, "params['weight']"),
    case(lambda: unbound_dense().bind({"weight": np.ones((2, 2), np.float16), "bias": np.zeros(2, np.float16)}),
         "bind float16", TypeError, "params['weight']"),
    case(lambda: unbound_dense().bind({"weight": np.ones((2, 2))}), "bind missing key", ValueError, "params"),
    case(lambda: unbound_dense().bind({"weight": np.ones((2, 3)), "bias": np.zeros(2)}), "bind wrong shape",
         ValueError, "params['weight']"),
    case(lambda: unbound_dense().bind({"weight": np.ones((2, 2)), "bias": np.zeros(2, np.float32)}),
         "bind mixed dtypes", TypeError, "params"),
    case(lambda: Conv2d(1, 2, 3).initialize(0, np.float16), "initialize float16", TypeError, "dtype"),
    case(lambda: Conv2d(1, 2, 3).initialize(-1), "initialize seed=-1", ValueError, "seed"),
    # ---- layer inputs ----------------------------------------------------------------------------------
    case(lambda: CONV.forward(X + 1j), "Conv2d complex x", TypeError, "x"),
    case(lambda: CP.forward(X + 1j), "CPConv2d complex x", TypeError, "x"),
    case(lambda: DENSE.forward(np.ones((2, 4)) + 1j), "Dense complex x", TypeError, "x"),
    case(lambda: ReLU().forward(X + 1j), "ReLU complex x", TypeError, "x"),
    case(lambda: MaxPool2d(2).forward(X.astype(np.float16)), "MaxPool2d float16 x", TypeError, "x"),
    case(lambda: AvgPool2d(2).forward(X.astype(np.float16)), "AvgPool2d float16 x", TypeError, "x"),
    case(lambda: GlobalAvgPool().forward(X > 0), "GlobalAvgPool bool x", TypeError, "x"),
    case(lambda: CONV.forward([[1.0, 2.0], [3.0]]), "Conv2d ragged x", ValueError, "x"),
    case(lambda: CONV.forward(X[0]), "Conv2d 3-d x", ValueError, "x"),
    case(lambda: CP.forward(X[0]), "CPConv2d 3-d x", ValueError, "x"),
    case(lambda: CONV.forward(np.ones((2, 3, 8, 8))), "Conv2d 3 channels for 1", ValueError, "x"),
    case(lambda: DENSE.forward(np.ones((2, 5))), "Dense 5 features for 4", ValueError, "x"),
    case(lambda: Flatten().forward(np.ones(3)), "Flatten 1-d x", ValueError, "x"),
    case(lambda: MaxPool2d(3).forward(np.ones((1, 1, 2, 2))), "MaxPool2d window > image", ValueError,
         "kernel_size"),
    # ---- backward / tangents with wrong shapes (read past the buffer before the fix) -------------------
    case(lambda: CONV.backward(np.ones((2, 2, 6, 5)), C_CONV), "Conv2d dy too small", ValueError, "dy"),
    case(lambda: CONV.backward(np.ones((2, 2, 6, 7)), C_CONV), "Conv2d dy too large", ValueError, "dy"),
    case(lambda: CONV.backward(np.ones((2, 2, 6, 6)) + 1j, C_CONV), "Conv2d complex dy", TypeError, "dy"),
    case(lambda: CONV.weight_grad(np.ones((2, 2, 5, 5)), C_CONV), "Conv2d weight_grad dy", ValueError, "dy"),
    case(lambda: CP.backward(np.ones((2, 2, 4, 8)), C_CP), "CPConv2d dy wrong shape", ValueError, "dy"),
    case(lambda: CP.backward(np.ones((2, 6, 6, 2)), C_CP), "CPConv2d dy transposed", ValueError, "dy"),
    case(lambda: DENSE.backward(np.ones((2, 4)), C_DENSE), "Dense dy wrong shape", ValueError, "dy"),
    case(lambda: ReLU().backward(np.ones((1,)), C_RELU), "ReLU dy broadcasting", ValueError, "dy"),
    case(lambda: POOL.backward(np.ones((2, 1, 5, 5)), C_POOL), "MaxPool2d dy too large", ValueError, "dy"),
    case(lambda: POOL.backward(np.ones((2, 1, 3, 3)), C_POOL), "MaxPool2d dy too small", ValueError, "dy"),
    case(lambda: AVG.backward(np.ones((2, 1, 3, 3)), C_AVG), "AvgPool2d dy wrong shape", ValueError, "dy"),
    case(lambda: GlobalAvgPool().backward(np.ones((2, 3)), C_GAP), "GlobalAvgPool dy", ValueError, "dy"),
    case(lambda: Flatten().backward(np.ones((2, 3)), C_FLAT), "Flatten dy", ValueError, "dy"),
    case(lambda: CONV.jvp(np.ones((2, 1, 7, 8)), CONV.params, C_CONV), "Conv2d rx wrong shape", ValueError, "rx"),
    case(lambda: CONV.jvp(None, {"weight": np.ones(3), "bias": np.ones(2)}, C_CONV), "Conv2d tparams shape",
         ValueError, "tparams['weight']"),
    case(lambda: CONV.jvp(None, {"weight": np.ones((2, 1, 3, 3))}, C_CONV), "Conv2d tparams missing key",
         ValueError, "tparams"),
    case(lambda: CP.jvp(np.ones((2, 1, 8, 7)), CP.params, C_CP), "CPConv2d rx wrong shape", ValueError, "rx"),
    case(lambda: DENSE.jvp(None, {"weight": np.ones((4, 3)), "bias": np.ones(3)}, C_DENSE), "Dense tparams",
         ValueError, "tparams['weight']"),
    case(lambda: ReLU().jvp(np.ones((2, 1, 8)), {}, C_RELU), "ReLU rx wrong shape", ValueError, "rx"),
    case(lambda: CONV.backward_jvp(np.ones((2, 2, 6, 6)), np.ones((2, 2, 6, 5)), C_CONV, {"rx": None},
                                   CONV.params), "Conv2d rdy wrong shape", ValueError, "rdy"),
    case(lambda: CP.backward_jvp(np.ones((2, 2, 6, 6)), np.ones((2, 2, 5, 6)), C_CP, {"rx": None}, CP.params),
         "CPConv2d rdy wrong shape", ValueError, "rdy"),
    case(lambda: POOL.backward_jvp(None, np.ones((2, 1, 5, 5)), C_POOL, {}, {}), "MaxPool2d rdy too large",
         ValueError, "rdy"),
    # ---- Sequential ------------------------------------------------------------------------------------
    case(lambda: Sequential([]), "Sequential no layers", TypeError, "layers"),
    case(lambda: Sequential([3]), "Sequential layers=[3]", TypeError, "layers"),
    case(lambda: Sequential([Dense(2, 2)], dtype=np.float16), "Sequential float16", TypeError, "dtype"),
    case(lambda: Sequential([Dense(2, 2)], seed=-1), "Sequential seed=-1", ValueError, "seed"),
    case(lambda: Sequential([Dense(2, 2)], input_shape=("a",)), "Sequential input_shape=('a',)", TypeError,
         "input_shape"),
    case(lambda: MODEL.forward(np.full((1, 1, 8, 8), np.nan)), "forward NaN x", ValueError, "x"),
    case(lambda: MODEL.forward(np.full((1, 1, 8, 8), np.inf)), "forward inf x", ValueError, "x"),
    case(lambda: MODEL.forward(X + 1j), "forward complex x", TypeError, "x"),
    case(lambda: MODEL.forward(X.astype(np.float16)), "forward float16 x", TypeError, "x"),
    case(lambda: MODEL.forward([[1.0, 2.0], [3.0]]), "forward ragged x", ValueError, "x"),
    case(lambda: MODEL.forward(np.ones((2, 1, 9, 9))), "forward wrong image size", ValueError, "x"),
    case(lambda: MODEL.forward(np.ones((0, 1, 8, 8))), "forward empty batch", ValueError, "x"),
    case(lambda: MODEL.forward("images"), "forward str x", TypeError, "x"),
    case(lambda: MODEL32.forward(np.full((1, 1, 8, 8), 1e300)), "float32 model x=1e300", ValueError, "float32"),
    case(lambda: MODEL.loss(np.full((2, 1, 8, 8), 1e308), Y), "loss x=1e308 overflows", ValueError, "inputs x"),
    case(lambda: MODEL.loss_and_grad(np.full((2, 1, 8, 8), 1e308), Y), "loss_and_grad x=1e308", ValueError,
         "inputs x"),
    case(lambda: MODEL.error(np.full((2, 1, 8, 8), 1e308), Y), "error x=1e308 overflows", ValueError, "x"),
    case(lambda: MODEL.forward(np.full((2, 1, 8, 8), 1e308)), "forward x=1e308 overflows", ValueError, "x"),
    case(lambda: MODEL.loss(X, [0.5, 1.0]), "y non-integer floats", TypeError, "y"),
    case(lambda: MODEL.loss(X, [[0], [1, 2]]), "y ragged", ValueError, "y"),
    case(lambda: MODEL.loss(X, [0, 10]), "y out of range", ValueError, "y"),
    case(lambda: MODEL.loss(X, [0, 1, 2]), "y too long", ValueError, "y"),
    case(lambda: MODEL.loss(X, ["a", "b"]), "y strings", TypeError, "y"),
    case(lambda: MODEL.copy().set_flat(np.ones(3)), "set_flat wrong length", ValueError, "v"),
    case(lambda: MODEL.copy().set_flat(np.full(N, np.nan)), "set_flat NaN", ValueError, "v"),
    case(lambda: MODEL.copy().set_flat([[1.0], [2.0, 3.0]]), "set_flat ragged", ValueError, "v"),
    case(lambda: MODEL.evaluate(X, Y, chunk_size=0), "evaluate chunk_size=0", ValueError, "chunk_size"),
    case(lambda: MODEL.hvp(X, Y, np.full(N, np.nan)), "hvp NaN v", ValueError, "v"),
    case(lambda: MODEL.hvp(X, Y, np.ones(3)), "hvp short v", ValueError, "v"),
    case(lambda: nan_model().loss_and_grad(X, Y), "loss_and_grad NaN parameters", ValueError, "parameters"),
    case(lambda: nan_model(np.inf).loss_and_grad(X, Y), "loss_and_grad inf parameters", ValueError, "parameters"),
    case(lambda: nan_model().evaluate(X, Y), "evaluate NaN parameters", ValueError, "parameters"),
    case(lambda: nan_model().error(X, Y), "error NaN parameters", ValueError, "parameters"),
    case(lambda: nan_model().forward(X), "forward NaN parameters", ValueError, "parameters"),
    # ---- losses ----------------------------------------------------------------------------------------
    case(lambda: softmax_cross_entropy(np.full((2, 3), np.nan), Y), "softmax NaN logits", ValueError, "logits"),
    case(lambda: softmax_cross_entropy(np.zeros(3), np.array([0])), "softmax 1-d logits", ValueError, "logits"),
    case(lambda: softmax_cross_entropy(np.zeros((2, 3)) + 1j, Y), "softmax complex logits", TypeError, "logits"),
    case(lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 5])), "softmax y >= K", ValueError, "y"),
    case(lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), "softmax float y", ValueError,
         "y"),
    case(lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0])), "softmax short y", ValueError, "y"),
    case(lambda: log_softmax(np.zeros(3)), "log_softmax 1-d", ValueError, "logits"),
    # ---- optimizers ------------------------------------------------------------------------------------
    case(lambda: SGD("0.1"), "SGD lr str", TypeError, "lr"),
    case(lambda: SGD(float("nan")), "SGD lr NaN", ValueError, "lr"),
    case(lambda: SGD(0.0), "SGD lr=0", ValueError, "lr"),
    case(lambda: SGD(0.1, momentum=1.0), "SGD momentum=1", ValueError, "momentum"),
    case(lambda: SGD(0.1, weight_decay=-1.0), "SGD weight_decay<0", ValueError, "weight_decay"),
    case(lambda: SGD(0.1, cp_update="x"), "SGD cp_update='x'", ValueError, "cp_update"),
    case(lambda: SGD(0.1, project_iters=0), "SGD project_iters=0", ValueError, "project_iters"),
    case(lambda: SGD(0.1).step(MODEL.copy(), grads(np.nan)), "SGD.step NaN grads", ValueError, "grads['"),
    case(lambda: SGD(0.1).step(MODEL.copy(), {}), "SGD.step missing grads", ValueError, "grads"),
    case(lambda: SGD(0.1).step(MODEL.copy(), grads(shape=(3,))), "SGD.step grads wrong shape", ValueError,
         "grads['"),
    case(lambda: SGD(0.1).step(3, {}), "SGD.step model=3", TypeError, "model"),
    case(lambda: SGD(0.1).step(MODEL.copy(), 3), "SGD.step grads=3", TypeError, "grads"),
    case(lambda: SGD(0.1).step(nan_model(), grads()), "SGD.step NaN parameters", ValueError, "param"),
    case(lambda: Adam(beta1=1.0), "Adam beta1=1", ValueError, "beta1"),
    case(lambda: Adam(eps=0.0), "Adam eps=0", ValueError, "eps"),
    case(lambda: Adam(lr=[]), "Adam lr=[]", ValueError, "lr"),
    case(lambda: Adam().step(MODEL.copy(), grads(np.nan)), "Adam.step NaN grads", ValueError, "grads"),
    case(lambda: Adam().step(MODEL.copy(), grads(shape=(3,))), "Adam.step grads wrong shape", ValueError, "grads"),
    case(lambda: Adam().update([np.ones(3)], [np.full(3, np.nan)]), "Adam.update NaN grads", ValueError,
         "grads[0]"),
    case(lambda: Adam().update([np.ones(3)], [np.ones(3), np.ones(3)]), "Adam.update 2 grads for 1", ValueError,
         "grads"),
    case(lambda: sgd_direction(np.ones(3), np.ones(4)), "sgd_direction shapes", ValueError, "grad"),
    case(lambda: sgd_direction(np.ones(3), np.ones(3), nesterov=True), "sgd_direction nesterov, no momentum",
         ValueError, "nesterov"),
    # ---- reference networks ----------------------------------------------------------------------------
    case(lambda: reference_cnn(3), "reference_cnn name=3", ValueError, "name"),
    case(lambda: reference_cnn("cifar"), "reference_cnn name='cifar'", ValueError, "name"),
    case(lambda: reference_cnn("digits", rank=0), "reference_cnn rank=0", ValueError, "rank"),
    case(lambda: reference_cnn("digits", rank=10**8), "reference_cnn rank=1e8", ValueError, "rank"),
    case(lambda: reference_cnn("digits", width=float("nan")), "reference_cnn width=NaN", ValueError, "width"),
    case(lambda: reference_cnn("digits", width=float("inf")), "reference_cnn width=inf", ValueError, "width"),
    case(lambda: reference_cnn("digits", width=0), "reference_cnn width=0", ValueError, "width"),
    case(lambda: reference_cnn("digits", width=True), "reference_cnn width=True", TypeError, "width"),
    case(lambda: reference_cnn("digits", width=1e6), "reference_cnn width=1e6", ValueError, "width"),
    case(lambda: reference_cnn("digits", dtype=np.float16), "reference_cnn float16", TypeError, "dtype"),
    case(lambda: reference_cnn("digits", seed=-1), "reference_cnn seed=-1", ValueError, "seed"),
    # ---- train -----------------------------------------------------------------------------------------
    case(lambda: gb.train(MODEL.copy(), DATA, epochs=0, progress=False), "train epochs=0", ValueError, "epochs"),
    case(lambda: gb.train(MODEL.copy(), DATA, batch_size=0, progress=False), "train batch_size=0", ValueError,
         "batch_size"),
    case(lambda: gb.train(MODEL.copy(), (X, Y), progress=False), "train data=(x, y)", TypeError, "data"),
    case(lambda: gb.train(nan_model(), DATA, epochs=1, progress=False), "train NaN parameters", ValueError,
         "parameters"),
    case(lambda: gb.train(MODEL.copy(), DATA, epochs=1, callback=3, progress=False), "train callback=3",
         TypeError, "callback"),
    case(lambda: gb.train(MODEL.copy(), DATA, epochs=1, step_callback=3, progress=False), "train step_callback=3",
         TypeError, "step_callback"),
    case(lambda: gb.train(MODEL.copy(), DATA, epochs=1, optimizer=SGD, progress=False), "train optimizer=SGD class",
         TypeError, "optimizer"),
    case(lambda: gb.train(3, DATA, epochs=1, progress=False), "train model=3", TypeError, "model"),
]


@pytest.mark.parametrize("call, exc, fragment", CASES)
def test_bad_input(call, exc, fragment):
    check_raises(call, exc, fragment)


def test_layer_rules_keep_working_on_good_input():
    """The checks refuse only bad input: integer images are converted, and a layer's backward of the right
    shape agrees with its forward (<R, y> is linear in y)."""
    y, cache = CONV.forward(X.astype(np.int64))
    ref, _ = CONV.forward(X.astype(np.int64).astype(np.float64))
    np.testing.assert_array_equal(y, ref)
    dx, g = CONV.backward(np.ones(y.shape), cache)
    assert dx.shape == X.shape and g["weight"].shape == (2, 1, 3, 3)
    # MaxPool2d on integers: converted to float64, not passed to the kernel as int
    out, _ = MaxPool2d(2).forward(np.arange(16).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(out, [[[[5.0, 7.0], [13.0, 15.0]]]])
