"""IDX files (the MNIST format): read, write, and build a :class:`Dataset` from the four standard files.

Layout of an IDX file: two zero bytes, one byte giving the element type, one byte giving the number of
dimensions ``d``, then ``d`` big-endian uint32 sizes, then the elements in C order, big-endian. Files may
be gzip-compressed as distributed; compression is recognized by its magic bytes, not the file name.
"""
from __future__ import annotations

import gzip as _gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from genbound._checks import check_dtype
from genbound.data.dataset import Dataset
from genbound.data.scaling import check_scaling

#: IDX element-type code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


#: Largest number of elements an IDX header may declare (2**40): a header declaring more (up to
#: (2**32 - 1)**255 elements, far beyond int64) is refused before any size arithmetic in numpy.
MAX_IDX_ELEMENTS = 2**40


def _fspath(path, name="path"):
    """``os.fspath(path)``, with a TypeError naming the argument for anything that is not a path."""
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{name}: expected a str or os.PathLike file path, got {type(path).__name__} "
                        f"{path!r}") from None


def _read_bytes(path):
    path = _fspath(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = _gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    return path, raw


def read_idx(path) -> np.ndarray:
    """Read one IDX file (raw or gzip-compressed) into a numpy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the magic bytes ``1f 8b``, whatever the file name.

    Returns
    -------
    numpy.ndarray
        Shape from the header; dtype from the header's type code (0x08 uint8, 0x09 int8, 0x0B int16,
        0x0C int32, 0x0D float32, 0x0E float64), converted from the file's big-endian order to the
        machine's native order.

    Raises
    ------
    ValueError
        Naming the path: a header that does not start with two zero bytes, an unknown type code, a file
        shorter than its header promises (truncated), bytes after the data, a corrupt gzip stream.

    References
    ----------
    LeCun, Cortes & Burges, "The MNIST database of handwritten digits" (file format section).
    """
    path, raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file: expected a 4-byte header, got {len(raw)} bytes")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file: expected magic bytes 00 00, got {raw[0]:02x} {raw[1]:02x}")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({dt.newbyteorder('=').name})" for c, dt in IDX_DTYPES.items())
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}; expected one of {known}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX file: the header announces {ndim} dimensions "
                         f"({header} header bytes), got {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[code]
    count = 1
    for size in shape:  # Python ints: a declared size never wraps around
        count *= size
    if count > MAX_IDX_ELEMENTS:
        raise ValueError(f"{path}: the IDX header declares shape {shape}, {count} elements, above the maximum "
                         f"{MAX_IDX_ELEMENTS} (genbound.data.idx.MAX_IDX_ELEMENTS): a corrupt header")
    nbytes = count * dtype.itemsize
    have = len(raw) - header
    if have < nbytes:
        raise ValueError(f"{path}: truncated IDX file: shape {shape} of {dtype.newbyteorder('=').name} needs "
                         f"{nbytes} data bytes, got {have}")
    if have > nbytes:
        raise ValueError(f"{path}: {have - nbytes} trailing bytes after the IDX data "
                         f"(shape {shape} of {dtype.newbyteorder('=').name} needs {nbytes} bytes)")
    arr = np.frombuffer(raw, dtype=dtype, count=nbytes // dtype.itemsize, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path, array, gzip=False) -> Path:
    """Write an array to an IDX file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (overwritten).
    array : array_like
        Of dtype uint8, int8, int16, int32, float32 or float64 (other dtypes are refused rather than
        converted); at most 255 dimensions, each below 2**32.
    gzip : bool
        Gzip-compress the file (deterministic: no time stamp).

    Returns
    -------
    pathlib.Path
        The path written.

    References
    ----------
    LeCun, Cortes & Burges, "The MNIST database of handwritten digits" (file format section).
    """
    from genbound._checks import as_array

    path = _fspath(path)
    arr = as_array(array, "array")
    code = _CODES.get(arr.dtype.newbyteorder("=")) if arr.dtype.kind in "iuf" else None
    if code is None:
        names = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise TypeError(f"array: expected one of the IDX dtypes {names}, got {arr.dtype}")
    if arr.ndim > 255:
        raise ValueError(f"array: an IDX file holds at most 255 dimensions, got {arr.ndim}")
    if any(s >= 2**32 for s in arr.shape):
        raise ValueError(f"array: IDX sizes must be below 2**32, got shape {arr.shape}")
    header = bytes((0, 0, code, arr.ndim)) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    if gzip:
        data = _gzip.compress(data, mtime=0)
    out = Path(os.fspath(path))
    out.write_bytes(data)
    return out


def _images(path, name, unit=True):
    arr = read_idx(path)
    if arr.ndim != 3:
        raise ValueError(f"{name} ({os.fspath(path)}): expected a 3-d IDX array (n, rows, cols) of images, "
                         f"got shape {arr.shape}")
    if unit and arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    return arr.astype(np.float64)


def _labels(path, name):
    arr = read_idx(path)
    if arr.ndim != 1:
        raise ValueError(f"{name} ({os.fspath(path)}): expected a 1-d IDX array of labels, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} ({os.fspath(path)}): expected integer labels, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} ({os.fspath(path)}): expected non-negative labels, got {arr.min()}")
    return arr.astype(np.int64)


def load_mnist_idx(train_images, train_labels, test_images, test_labels, *, scaling="standardize", classes=None,
                   dtype=np.float64) -> Dataset:
    """Build a :class:`Dataset` from the four IDX files of MNIST (or a dataset in the same format).

    Images are read as (n, rows, cols) and given a channel axis (n, 1, rows, cols). With ``"fixed"`` or
    ``"standardize"`` scaling, uint8 files are divided by 255 (values in [0, 1]; other dtypes are taken as
    they are); ``"standardize"`` then standardizes all images with the mean and standard deviation of *all
    training pixels* (one scalar each; the test images use the training statistics). ``"raw"`` keeps the
    stored values. Labels become int64.

    Parameters
    ----------
    train_images, train_labels, test_images, test_labels : str or os.PathLike
        IDX files, raw or gzip-compressed (e.g. ``train-images-idx3-ubyte.gz``).
    scaling : {"standardize", "fixed", "raw"}
        See above and :mod:`genbound.data.scaling`. A bound evaluated on this training set should use
        ``"fixed"`` (data-independent).
    classes : int, optional
        Number of classes; default the largest label plus one (10 for MNIST).
    dtype : {numpy.float64, numpy.float32}
        Dtype of the images.

    Returns
    -------
    Dataset
        ``info`` holds ``"source"`` (the four paths), ``"scaling"`` and the statistics ``"mean"`` and
        ``"std"`` (``None`` without standardization).

    Raises
    ------
    ValueError
        An unreadable IDX file (see :func:`read_idx`), image files that are not 3-d, label files that are
        not 1-d, or image and label files with different counts (both files and counts are named).

    References
    ----------
    LeCun, Bottou, Bengio & Haffner (1998), Gradient-based learning applied to document recognition,
    Proc. IEEE; LeCun, Cortes & Burges, "The MNIST database of handwritten digits".
    """
    dt = check_dtype(dtype)
    scaling = check_scaling(scaling)
    for value, name in ((train_images, "train_images"), (train_labels, "train_labels"),
                        (test_images, "test_images"), (test_labels, "test_labels")):
        _fspath(value, name)
    parts = {}
    for part, img_path, lab_path in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        x = _images(img_path, f"{part}_images", unit=scaling != "raw")
        y = _labels(lab_path, f"{part}_labels")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{part}_images ({os.fspath(img_path)}) holds {x.shape[0]} images but "
                             f"{part}_labels ({os.fspath(lab_path)}) holds {y.shape[0]} labels")
        parts[part] = (x[:, None, :, :], y)
    (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
    if x_test.shape[2:] != x_train.shape[2:]:
        raise ValueError(f"test_images ({os.fspath(test_images)}): expected images of size "
                         f"{x_train.shape[2:]} as in train_images, got {x_test.shape[2:]}")
    mean = std = None
    if scaling == "standardize":
        mean = float(x_train.mean())
        std = float(x_train.std())
        scale = std if std > 0 else 1.0
        x_train = (x_train - mean) / scale
        x_test = (x_test - mean) / scale
    info = {"source": tuple(os.fspath(p) for p in (train_images, train_labels, test_images, test_labels)),
            "scaling": scaling, "mean": mean, "std": std}
    return Dataset(x_train.astype(dt, copy=False), y_train, x_test.astype(dt, copy=False), y_test,
                   classes=classes, info=info)
