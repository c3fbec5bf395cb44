"""The CNN engine: layers with exact backprop and R-operator, Sequential models, optimizers, training.

Models are data: ``save`` / ``load`` (:mod:`genbound.nn.io`, no pickle), ``Sequential.state_dict`` with
PyTorch's names, ``to_torch`` / ``from_torch`` (PyTorch optional).

How the kernels run (chunks, threads, serial BLAS, reused buffers) is :mod:`genbound.nn.runtime`."""
from genbound.nn.layers import (AvgPool2d, Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, Layer, MaxPool2d,
                                ReLU)
from genbound.nn.loss import log_softmax, softmax_cross_entropy
from genbound.nn.model import NonFiniteLogitsError, Sequential
from genbound.nn.objective import Objective, restored, training_pair
from genbound.nn.optim import GD, SGD, Adam, sgd_direction
from genbound.nn.reference import REFERENCE_NETWORKS, reference_cnn
from genbound.nn.io import load, read_header, save
from genbound.nn.torch import from_torch, to_torch
from genbound.nn.train import DivergenceError, train

__all__ = ["AvgPool2d", "Conv2d", "CPConv2d", "Dense", "Flatten", "GlobalAvgPool", "Layer", "MaxPool2d", "ReLU",
           "Sequential", "SGD", "GD", "Adam", "sgd_direction", "reference_cnn", "REFERENCE_NETWORKS", "train",
           "softmax_cross_entropy", "log_softmax", "Objective", "restored", "training_pair", "save", "load",
           "read_header", "to_torch", "from_torch", "DivergenceError", "NonFiniteLogitsError"]
