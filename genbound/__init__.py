"""genbound: a numerical library for studying why deep networks generalize.

Subpackages are imported lazily so that ``import genbound`` stays fast:
``genbound.nn`` (the CNN engine), ``genbound.data``, ``genbound.factor``, ``genbound.symbolic``,
``genbound.bounds``, ``genbound.landscape``, ``genbound.experiments``, ``genbound.testing``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("nn", "data", "factor", "symbolic", "bounds", "landscape", "experiments", "testing", "cli")


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"genbound.{name}")
        globals()[name] = module
        return module
    if name == "train":
        from genbound.nn.train import train

        globals()["train"] = train
        return train
    raise AttributeError(f"module 'genbound' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + ["train"])
