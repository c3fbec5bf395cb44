"""Bad inputs to genbound.data: Dataset, subsets and splits, loaders, IDX files, randomizations, scaling."""
import struct

import numpy as np
import pytest

import genbound as gb
from genbound.data import Dataset, load_digits, load_mnist_idx, randomize, read_idx, standardize, write_idx
from tests.reliability import case, check_raises

X = np.zeros((4, 1, 2, 2))
Y = np.array([0, 1, 0, 1])
D = Dataset(X, Y, X, Y)
D0 = Dataset(X, Y, np.zeros((0, 1, 2, 2)), [])


def idx_file(name, header_shape, code=0x08, payload=b""):
    """A file in a fresh temporary folder with an IDX header declaring ``header_shape``."""
    import tempfile

    path = f"{tempfile.mkdtemp()}/{name}"
    with open(path, "wb") as fh:
        fh.write(bytes((0, 0, code, len(header_shape))) + struct.pack(f">{len(header_shape)}I", *header_shape)
                 + payload)
    return path


def small_idx_pair():
    import tempfile

    folder = tempfile.mkdtemp()
    img = write_idx(f"{folder}/img", np.zeros((3, 2, 2), np.uint8))
    lab = write_idx(f"{folder}/lab", np.zeros(3, np.uint8))
    return img, lab


CASES = [
    # ---- Dataset -------------------------------------------------------------------------------------
    case(lambda: Dataset([[1.0, 2.0], [3.0]], Y, X, Y), "x_train ragged list", ValueError, "x_train"),
    case(lambda: Dataset(np.full((4, 1, 2, 2), np.nan), Y, X, Y), "x_train NaN", ValueError, "x_train"),
    case(lambda: Dataset(X, Y, np.full((4, 1, 2, 2), np.inf), Y), "x_test inf", ValueError, "x_test"),
    case(lambda: Dataset(X + 1j, Y, X, Y), "x_train complex", TypeError, "x_train"),
    case(lambda: Dataset(X.astype(np.float16), Y, X, Y), "x_train float16", TypeError, "x_train"),
    case(lambda: Dataset(X > 0, Y, X, Y), "x_train bool", TypeError, "x_train"),
    case(lambda: Dataset("abc", Y, X, Y), "x_train str", TypeError, "x_train"),
    case(lambda: Dataset(X[:, 0], Y, X, Y), "x_train 3-d", ValueError, "x_train"),
    case(lambda: Dataset(X, Y, np.zeros((4, 1, 3, 3)), Y), "x_test other image size", ValueError, "x_test"),
    case(lambda: Dataset(X[:0], Y[:0], X, Y), "no training images", ValueError, "x_train"),
    case(lambda: Dataset(X, Y * 1.0, X, Y), "y_train float", TypeError, "y_train"),
    case(lambda: Dataset(X, -Y, X, Y), "y_train negative", ValueError, "y_train"),
    case(lambda: Dataset(X, Y[:3], X, Y), "y_train too short", ValueError, "y_train"),
    case(lambda: Dataset(X, [[0], [1, 1], [0], [1]], X, Y), "y_train ragged", ValueError, "y_train"),
    case(lambda: Dataset(X, Y, X, Y[:2]), "y_test too short", ValueError, "y_test"),
    case(lambda: Dataset(X, Y, X, Y, classes=0), "classes=0", ValueError, "classes"),
    case(lambda: Dataset(X, Y, X, Y, classes=1), "classes below the labels", ValueError, "y_train"),
    case(lambda: Dataset(X, Y, X, Y, classes=2.0), "classes float", TypeError, "classes"),
    case(lambda: Dataset(X, Y, X, Y, info=[1]), "info list", TypeError, "info"),
    # ---- subsets, splits, batches -------------------------------------------------------------------
    case(lambda: D.subset([0.5, 1.0]), "subset float indices", TypeError, "train_idx"),
    case(lambda: D.subset([7]), "subset index out of range", ValueError, "train_idx"),
    case(lambda: D.subset([[0], [1, 2]]), "subset ragged indices", ValueError, "train_idx"),
    case(lambda: D.subset([True, False]), "subset short mask", ValueError, "train_idx"),
    case(lambda: D.subset([0], test_idx=[9]), "subset test index out of range", ValueError, "test_idx"),
    case(lambda: D.split_train(0), "split_train fraction=0", ValueError, "fraction"),
    case(lambda: D.split_train(1.5), "split_train fraction=1.5", ValueError, "fraction"),
    case(lambda: D.split_train(float("nan")), "split_train fraction=NaN", ValueError, "fraction"),
    case(lambda: D.split_train("half"), "split_train fraction str", TypeError, "fraction"),
    case(lambda: D.batch_indices(0), "batch_indices batch_size=0", ValueError, "batch_size"),
    case(lambda: D.batch_indices(2.0), "batch_indices batch_size float", TypeError, "batch_size"),
    case(lambda: D.astype(np.float16), "astype float16", TypeError, "dtype"),
    case(lambda: D.class_counts("val"), "class_counts part='val'", ValueError, "part"),
    # ---- randomize, standardize ---------------------------------------------------------------------
    case(lambda: randomize(D, "bogus"), "randomize kind", ValueError, "kind"),
    case(lambda: randomize(D, "partial_labels", 1.5), "randomize fraction=1.5", ValueError, "fraction"),
    case(lambda: randomize(D, "random_labels", 0.5), "randomize random_labels fraction<1", ValueError, "fraction"),
    case(lambda: randomize((X, Y), "random_labels"), "randomize tuple", TypeError, "data"),
    case(lambda: randomize(D, "random_labels", seed=-1), "randomize seed=-1", ValueError, "seed"),
    case(lambda: randomize(D, "random_labels", seed=1.5), "randomize seed float", TypeError, "seed"),
    case(lambda: standardize(D, fit=[0.5]), "standardize float fit", TypeError, "fit"),
    case(lambda: standardize(D, fit=[9]), "standardize fit out of range", ValueError, "fit"),
    case(lambda: standardize(D, fit=[]), "standardize empty fit", ValueError, "fit"),
    case(lambda: standardize(D, fit=[[0], [1, 2]]), "standardize ragged fit", ValueError, "fit"),
    case(lambda: standardize((X, Y)), "standardize tuple", TypeError, "data"),
    # ---- loaders --------------------------------------------------------------------------------------
    case(lambda: load_digits(test_fraction=0), "load_digits test_fraction=0", ValueError, "test_fraction"),
    case(lambda: load_digits(test_fraction=1e-6), "load_digits test_fraction too small", ValueError,
         "test_fraction"),
    case(lambda: load_digits(scaling="minmax"), "load_digits scaling", ValueError, "scaling"),
    case(lambda: load_digits(dtype=np.int32), "load_digits dtype int32", TypeError, "dtype"),
    case(lambda: load_digits(seed="0"), "load_digits seed str", TypeError, "seed"),
    case(lambda: gb.data.load_mnist_subset(test_fraction=2), "load_mnist_subset test_fraction=2", ValueError,
         "test_fraction"),
    # ---- IDX files ------------------------------------------------------------------------------------
    case(lambda: read_idx(idx_file("ov4", [2**32 - 1] * 4, payload=b"\0" * 10)), "IDX (2^32-1)^4 elements",
         ValueError, "declares shape"),
    case(lambda: read_idx(idx_file("wrap", [2**16] * 4)), "IDX 2^64 elements (wraps int64 to 0)", ValueError,
         "declares shape"),
    case(lambda: read_idx(idx_file("f8", [2**21, 2**21, 2**20], code=0x0E)), "IDX float64 2^62 elements",
         ValueError, "declares shape"),
    case(lambda: read_idx(idx_file("trunc", [3, 2, 2], payload=b"\0" * 5)), "IDX truncated data", ValueError,
         "truncated"),
    case(lambda: read_idx(idx_file("code", [3], code=0x07, payload=b"\0" * 3)), "IDX unknown type code",
         ValueError, "type code"),
    case(lambda: read_idx(idx_file("tail", [2], payload=b"\0" * 5)), "IDX trailing bytes", ValueError, "trailing"),
    case(lambda: read_idx(3.5), "read_idx path=3.5", TypeError, "path"),
    case(lambda: read_idx("/nonexistent/file.idx"), "read_idx missing file", FileNotFoundError,
         "/nonexistent/file.idx"),
    case(lambda: write_idx("/tmp/x.idx", np.ones(3, complex)), "write_idx complex", TypeError, "array"),
    case(lambda: write_idx("/tmp/x.idx", [[1], [1, 2]]), "write_idx ragged", ValueError, "array"),
    case(lambda: write_idx("/tmp/x.idx", np.ones(3, np.int64)), "write_idx int64", TypeError, "array"),
    case(lambda: write_idx(None, np.ones(3, np.uint8)), "write_idx path=None", TypeError, "path"),
    case(lambda: load_mnist_idx(*small_idx_pair(), None, None), "load_mnist_idx test_images=None", TypeError,
         "test_images"),
    case(lambda: load_mnist_idx(*small_idx_pair()[::-1], *small_idx_pair()), "load_mnist_idx labels as images",
         ValueError, "train_images"),
    case(lambda: load_mnist_idx(*small_idx_pair(), *small_idx_pair(), classes=0), "load_mnist_idx classes=0",
         ValueError, "classes"),
    case(lambda: load_mnist_idx(*small_idx_pair(), *small_idx_pair(), scaling=3), "load_mnist_idx scaling=3",
         ValueError, "scaling"),
]


@pytest.mark.parametrize("call, exc, fragment", CASES)
def test_bad_input(call, exc, fragment):
    check_raises(call, exc, fragment)


def test_zero_test_images_allowed_in_data():
    """A Dataset without test images (documented as allowed) works with every data function."""
    assert D0.n_test == 0 and D0.y_test.dtype == np.int64
    for kind in gb.data.RANDOMIZATIONS:
        out = randomize(D0, kind, corrupt_test=True)
        assert out.n_test == 0 and out.m == 4
    assert standardize(D0).n_test == 0
    a, b = D0.split_train(0.5, seed=0)
    assert a.n_test == b.n_test == 0 and a.m + b.m == 4
    assert D0.subset([0, 1], test_idx=[]).n_test == 0
    np.testing.assert_array_equal(D0.class_counts("test"), [0, 0])
    img, lab = small_idx_pair()
    import tempfile

    folder = tempfile.mkdtemp()
    img0 = write_idx(f"{folder}/img0", np.zeros((0, 2, 2), np.uint8))
    lab0 = write_idx(f"{folder}/lab0", np.zeros(0, np.uint8))
    assert load_mnist_idx(img, lab, img0, lab0, scaling="fixed").n_test == 0


def test_zero_test_images_allowed_in_train():
    model = gb.nn.Sequential([gb.nn.Flatten(), gb.nn.Dense(4, 2)], seed=0, input_shape=(1, 2, 2))
    hist = gb.train(model, Dataset(np.random.default_rng(0).normal(size=(4, 1, 2, 2)), Y,
                                   np.zeros((0, 1, 2, 2)), []), epochs=1, progress=False)
    assert np.isnan(hist["test_error"]).all() and np.isfinite(hist["train_error"]).all()


def test_idx_round_trip_still_reads():
    """The header checks refuse only corrupt headers: a written file reads back exactly."""
    import tempfile

    arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    path = write_idx(f"{tempfile.mkdtemp()}/a.idx", arr, gzip=True)
    np.testing.assert_array_equal(read_idx(path), arr)
