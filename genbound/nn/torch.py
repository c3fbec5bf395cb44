"""PyTorch interchange: a torch module computing the same function with the same parameters, and back.

PyTorch is optional: it is imported inside the functions only (``pip install torch``, or the ``torch``
extra of genbound). Parameter names and shapes are PyTorch's (``"0.weight"`` (O, C, kh, kw), ``"6.bias"``),
so :meth:`Sequential.state_dict` of a model without CP layers loads into the module as it is.
"""
from __future__ import annotations

import numpy as np

from genbound._checks import check_dtype
from genbound.nn.layers import AvgPool2d, Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU
from genbound.nn.model import Sequential


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("genbound.nn.to_torch/from_torch need PyTorch: pip install torch") from exc
    return torch


def _cp_module_class():
    """The torch module of a CP convolution (built once torch is imported)."""
    torch = _torch()
    if getattr(_cp_module_class, "cls", None) is not None:
        return _cp_module_class.cls

    class CPConv2dModule(torch.nn.Module):
        r"""A convolution whose filters are rank-R CP tensors, with the factors as parameters:

        .. math:: W[o] = \sum_r p_{o,r} \otimes q_{o,r} \otimes t_{o,r}, \qquad y = \mathrm{conv2d}(x, W) + b,

        so autograd gives the gradients with respect to ``p`` (O, R, C), ``q`` (O, R, kh), ``t`` (O, R, kw)
        and ``bias`` (O,), the same as :class:`genbound.nn.CPConv2d`.
        """

        def __init__(self, p, q, t, bias, stride=1, padding=0):
            super().__init__()
            self.p = torch.nn.Parameter(p)
            self.q = torch.nn.Parameter(q)
            self.t = torch.nn.Parameter(t)
            self.bias = torch.nn.Parameter(bias)
            self.stride, self.padding = int(stride), int(padding)

        def weight(self):
            """The reconstructed filters W (O, C, kh, kw)."""
            return torch.einsum("orc,orj,ork->ocjk", self.p, self.q, self.t)

        def forward(self, x):
            return torch.nn.functional.conv2d(x, self.weight(), self.bias, stride=self.stride, padding=self.padding)

        def extra_repr(self):
            o, r, c = self.p.shape
            return f"{c}, {o}, kernel_size={self.q.shape[2]}, rank={r}, stride={self.stride}, padding={self.padding}"

    _cp_module_class.cls = CPConv2dModule
    return CPConv2dModule


def _tensor(a, torch):
    return torch.from_numpy(np.array(a, copy=True))


def to_torch(model):
    """A ``torch.nn.Sequential`` computing the same function as ``model`` with copies of its parameters.

    One torch module per layer, so the parameter names match :meth:`Sequential.state_dict`:
    :class:`Conv2d` -> ``torch.nn.Conv2d``, :class:`Dense` -> ``torch.nn.Linear``, :class:`ReLU`,
    :class:`MaxPool2d`, :class:`AvgPool2d`, :class:`Flatten` -> their torch namesakes,
    :class:`GlobalAvgPool` -> ``Sequential(AdaptiveAvgPool2d(1), Flatten())``, and :class:`CPConv2d` -> a small
    module holding ``p``, ``q``, ``t``, ``bias`` that forms W = sum_r p (x) q (x) t and calls ``conv2d``, so
    gradients with respect to the factors match too. The dtype is the model's.

    Parameters
    ----------
    model : Sequential

    Returns
    -------
    torch.nn.Sequential
    """
    torch = _torch()
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a genbound.nn.Sequential, got {type(model).__name__}")
    model.check_finite()
    dtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[np.dtype(model.dtype)]
    nn = torch.nn
    modules = []
    for layer in model.layers:
        if isinstance(layer, CPConv2d):
            mod = _cp_module_class()(*(_tensor(layer.params[k], torch) for k in ("p", "q", "t", "bias")),
                                     stride=layer.stride, padding=layer.padding)
        elif isinstance(layer, Conv2d):
            mod = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                            padding=layer.padding, dtype=dtype)
            with torch.no_grad():
                mod.weight.copy_(_tensor(layer.params["weight"], torch))
                mod.bias.copy_(_tensor(layer.params["bias"], torch))
        elif isinstance(layer, Dense):
            mod = nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
            with torch.no_grad():
                mod.weight.copy_(_tensor(layer.params["weight"], torch))
                mod.bias.copy_(_tensor(layer.params["bias"], torch))
        elif isinstance(layer, ReLU):
            mod = nn.ReLU()
        elif isinstance(layer, MaxPool2d):
            mod = nn.MaxPool2d(layer.kernel_size, stride=layer.stride)
        elif isinstance(layer, AvgPool2d):
            mod = nn.AvgPool2d(layer.kernel_size, stride=layer.stride)
        elif isinstance(layer, GlobalAvgPool):
            mod = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif isinstance(layer, Flatten):
            mod = nn.Flatten()
        else:
            raise TypeError(f"model: no torch equivalent for layer {type(layer).__name__}")
        modules.append(mod)
    return nn.Sequential(*modules)


def _pair(value, name, where):
    """An int from a torch int-or-pair argument whose two entries agree, else a ValueError."""
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"module: {where}: expected the same {name} along H and W, got {tuple(value)}")
        value = value[0]
    if not isinstance(value, int):
        raise ValueError(f"module: {where}: expected an int {name}, got {value!r}")
    return value


def _numpy(tensor):
    return tensor.detach().cpu().numpy().copy()


def from_torch(module, input_shape):
    """A genbound :class:`Sequential` computing the same function as a torch module, with its parameters.

    Accepts the modules :func:`to_torch` builds and plain ``torch.nn.Sequential`` models of ``Conv2d``
    (square kernel, equal stride and padding along both axes, no dilation or groups, zero padding),
    ``ReLU``, ``MaxPool2d`` / ``AvgPool2d`` (no padding, no ceil mode), ``AdaptiveAvgPool2d(1)``, ``Flatten``
    and ``Linear``. ``AdaptiveAvgPool2d(1)`` becomes :class:`GlobalAvgPool` (which already flattens; the
    ``Flatten`` after it is then the identity). A missing bias becomes a zero bias. Layer ``i`` of the result
    holds the parameters of module ``i``, under the same names.

    Parameters
    ----------
    module : torch.nn.Sequential
        Float32 or float64 parameters.
    input_shape : tuple (C, H, W)
        The shape of one input.

    Returns
    -------
    Sequential
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"module: expected a torch.nn.Sequential, got {type(module).__name__}")
    params = list(module.parameters())
    dtype = check_dtype(str(params[0].dtype).removeprefix("torch.") if params else "float64", "module dtype")
    cp_cls = _cp_module_class()
    layers, values = [], {}
    for i, mod in enumerate(module):
        where = f"[{i}] {type(mod).__name__}"
        if isinstance(mod, cp_cls):
            o, r, c = mod.p.shape
            layers.append(CPConv2d(c, o, mod.q.shape[2], rank=r, stride=mod.stride, padding=mod.padding))
            values.update({f"{i}.{k}": _numpy(getattr(mod, k)) for k in ("p", "q", "t", "bias")})
        elif isinstance(mod, nn.Conv2d):
            if _pair(mod.dilation, "dilation", where) != 1 or mod.groups != 1 or mod.padding_mode != "zeros":
                raise ValueError(f"module: {where}: expected dilation 1, groups 1 and zero padding")
            if isinstance(mod.padding, str):
                raise ValueError(f"module: {where}: expected an int padding, got {mod.padding!r}")
            layers.append(Conv2d(mod.in_channels, mod.out_channels, _pair(mod.kernel_size, "kernel_size", where),
                                 stride=_pair(mod.stride, "stride", where),
                                 padding=_pair(mod.padding, "padding", where)))
            values[f"{i}.weight"] = _numpy(mod.weight)
            values[f"{i}.bias"] = np.zeros(mod.out_channels) if mod.bias is None else _numpy(mod.bias)
        elif isinstance(mod, nn.Linear):
            layers.append(Dense(mod.in_features, mod.out_features))
            values[f"{i}.weight"] = _numpy(mod.weight)
            values[f"{i}.bias"] = np.zeros(mod.out_features) if mod.bias is None else _numpy(mod.bias)
        elif isinstance(mod, nn.ReLU):
            layers.append(ReLU())
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            if _pair(mod.padding, "padding", where) != 0 or mod.ceil_mode:
                raise ValueError(f"module: {where}: expected padding 0 and ceil_mode False")
            if isinstance(mod, nn.MaxPool2d) and (_pair(mod.dilation, "dilation", where) != 1 or mod.return_indices):
                raise ValueError(f"module: {where}: expected dilation 1 and return_indices False")
            if isinstance(mod, nn.AvgPool2d) and mod.divisor_override is not None:
                raise ValueError(f"module: {where}: expected divisor_override None")
            k = _pair(mod.kernel_size, "kernel_size", where)
            stride = k if mod.stride is None else _pair(mod.stride, "stride", where)
            layers.append((MaxPool2d if isinstance(mod, nn.MaxPool2d) else AvgPool2d)(k, stride=stride))
        elif isinstance(mod, nn.AdaptiveAvgPool2d) or (
                isinstance(mod, nn.Sequential) and len(mod) == 2 and isinstance(mod[0], nn.AdaptiveAvgPool2d)
                and isinstance(mod[1], nn.Flatten)):
            pool = mod if isinstance(mod, nn.AdaptiveAvgPool2d) else mod[0]
            if _pair(pool.output_size, "output_size", where) != 1:
                raise ValueError(f"module: {where}: expected output size 1 (global average pooling), "
                                 f"got {pool.output_size!r}")
            layers.append(GlobalAvgPool())
        elif isinstance(mod, nn.Flatten):
            if mod.start_dim != 1 or mod.end_dim != -1:
                raise ValueError(f"module: {where}: expected Flatten(start_dim=1, end_dim=-1)")
            layers.append(Flatten())
        else:
            raise TypeError(f"module: {where}: no genbound layer for this module")
    model = Sequential(layers, seed=0, dtype=dtype, input_shape=input_shape)
    model.seed = None
    return model.load_state_dict(values)
