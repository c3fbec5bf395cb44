"""IDX files: round trips for every type code, raw and gzip, clear errors; load_mnist_idx."""
import gzip
import os
import struct
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from genbound.data import load_mnist_idx, read_idx, write_idx

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr, code=None, ndim=None, shape=None):
    """Build an IDX file by hand, independently of write_idx."""
    arr = np.asarray(arr)
    shape = arr.shape if shape is None else shape
    code = CODES[arr.dtype.type] if code is None else code
    ndim = len(shape) if ndim is None else ndim
    header = bytes([0, 0, code, ndim]) + b"".join(struct.pack(">I", s) for s in shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@settings(max_examples=80, deadline=None)
@given(arr=hnp.arrays(st.sampled_from(list(CODES)), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                                       max_side=5)),
       compress=st.booleans())
def test_round_trip_every_dtype(arr, compress):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "a.idx")
        write_idx(path, arr, gzip=compress)
        with open(path, "rb") as fh:
            head = fh.read(2)
        assert (head == b"\x1f\x8b") == compress
        back = read_idx(path)
        assert back.dtype == arr.dtype and back.dtype.isnative and back.shape == arr.shape
        assert back.tobytes() == arr.tobytes()  # bit-exact, NaN payloads included
        # the file matches an independent encoding of the format
        with open(path, "rb") as fh:
            data = fh.read()
        assert (gzip.decompress(data) if compress else data) == idx_bytes(arr)


def test_reads_hand_made_big_endian_file(tmp_path):
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4) * 1000003 - 7
    (tmp_path / "x").write_bytes(idx_bytes(arr))
    out = read_idx(tmp_path / "x")
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.int32
    # explicit header bytes for a tiny uint8 file
    (tmp_path / "y").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 6, 255]))
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), np.array([5, 6, 255], np.uint8))


def test_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    (tmp_path / "compressed.idx").write_bytes(gzip.compress(idx_bytes(arr)))
    (tmp_path / "plain.gz").write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed.idx"), arr)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "plain.gz")), arr)


def test_big_endian_input_array_written(tmp_path):
    arr = np.arange(5, dtype=">i2")
    write_idx(tmp_path / "a", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("mangle, match", [
    (lambda b: b[:-1], r"truncated IDX file: shape \(3, 4\) of int16 needs 24 data bytes, got 23"),
    (lambda b: b[:6], r"truncated IDX file: the header announces 2 dimensions"),
    (lambda b: b[:3], r"truncated IDX file: expected a 4-byte header, got 3 bytes"),
    (lambda b: b"", r"truncated IDX file"),
    (lambda b: b + b"\x00\x01", r"2 trailing bytes after the IDX data"),
    (lambda b: b"\x08\x03" + b[2:], r"not an IDX file: expected magic bytes 00 00, got 08 03"),
    (lambda b: b[:1] + b"\x01" + b[2:], r"not an IDX file"),
    (lambda b: b[:2] + b"\x0a" + b[3:], r"unknown IDX type code 0x0A; expected one of 0x08 \(uint8\)"),
    (lambda b: b[:2] + b"\x07" + b[3:], r"unknown IDX type code 0x07"),
])
def test_read_errors_name_the_path(tmp_path, compress, mangle, match):
    good = idx_bytes(np.arange(12, dtype=np.int16).reshape(3, 4))
    bad = mangle(good)
    path = tmp_path / "broken-file.idx"
    path.write_bytes(gzip.compress(bad) if compress else bad)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"cut\.gz: corrupt or truncated gzip stream"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


@pytest.mark.parametrize("bad", [np.arange(3, dtype=np.int64), np.zeros(2, np.float16), np.zeros(2, bool),
                                 np.zeros(2, np.uint16), np.array(["a"])])
def test_write_refuses_other_dtypes(tmp_path, bad):
    with pytest.raises(TypeError, match=r"array: expected one of the IDX dtypes uint8, int8, int16"):
        write_idx(tmp_path / "a", bad)
    assert not (tmp_path / "a").exists()


def test_write_is_deterministic_with_gzip(tmp_path):
    arr = np.arange(50, dtype=np.uint8)
    write_idx(tmp_path / "a", arr, gzip=True)
    write_idx(tmp_path / "b", arr, gzip=True)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


# ---------------------------------------------------------------- load_mnist_idx

def fake_mnist(tmp_path, n_train=30, n_test=12, size=6, compress=True, seed=0):
    gen = np.random.default_rng(seed)
    arrays = {
        "train_images": gen.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train_labels": gen.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": gen.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "test_labels": gen.integers(0, 10, n_test, dtype=np.uint8),
    }
    paths = {}
    for name, arr in arrays.items():
        paths[name] = write_idx(tmp_path / (name + (".gz" if compress else "")), arr, gzip=compress)
    return paths, arrays


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_idx(tmp_path, compress):
    paths, arrays = fake_mnist(tmp_path, compress=compress)
    d = load_mnist_idx(**paths, scaling="fixed")
    assert d.x_train.shape == (30, 1, 6, 6) and d.x_test.shape == (12, 1, 6, 6)
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    np.testing.assert_array_equal(d.x_train[:, 0], arrays["train_images"] / 255.0)
    np.testing.assert_array_equal(d.y_test, arrays["test_labels"])
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1

    n = load_mnist_idx(**paths)
    scaled = arrays["train_images"] / 255.0
    mean, std = scaled.mean(), scaled.std()
    np.testing.assert_allclose(n.x_train.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(n.x_train.std(), 1, rtol=1e-12)
    np.testing.assert_allclose(n.x_test[:, 0], (arrays["test_images"] / 255.0 - mean) / std, rtol=1e-12)
    assert n.info["mean"] == pytest.approx(mean) and n.info["std"] == pytest.approx(std)


def test_load_mnist_idx_classes_and_dtype(tmp_path):
    paths, _ = fake_mnist(tmp_path)
    d = load_mnist_idx(*paths.values(), classes=12, dtype=np.float32)
    assert d.classes == 12 and d.dtype == np.float32


def test_load_mnist_idx_count_mismatch_names_both_files(tmp_path):
    paths, arrays = fake_mnist(tmp_path)
    write_idx(paths["train_labels"], arrays["train_labels"][:-1], gzip=True)
    with pytest.raises(ValueError, match=r"train_images \(.*train_images\.gz\) holds 30 images but "
                                         r"train_labels \(.*train_labels\.gz\) holds 29 labels"):
        load_mnist_idx(**paths)


def test_load_mnist_idx_shape_errors(tmp_path):
    paths, arrays = fake_mnist(tmp_path)
    write_idx(tmp_path / "labels2d", arrays["test_labels"].reshape(-1, 1))
    with pytest.raises(ValueError, match=r"test_labels \(.*labels2d\): expected a 1-d IDX array .*\(12, 1\)"):
        load_mnist_idx(**dict(paths, test_labels=tmp_path / "labels2d"))
    write_idx(tmp_path / "images2d", arrays["train_images"].reshape(30, -1))
    with pytest.raises(ValueError, match=r"train_images \(.*images2d\): expected a 3-d IDX array"):
        load_mnist_idx(**dict(paths, train_images=tmp_path / "images2d"))
    write_idx(tmp_path / "small", arrays["test_images"][:, :5, :5])
    with pytest.raises(ValueError, match=r"test_images \(.*small\): expected images of size \(6, 6\)"):
        load_mnist_idx(**dict(paths, test_images=tmp_path / "small"))
    write_idx(tmp_path / "flabels", arrays["test_labels"].astype(np.float32))
    with pytest.raises(ValueError, match=r"test_labels \(.*flabels\): expected integer labels"):
        load_mnist_idx(**dict(paths, test_labels=tmp_path / "flabels"))
