"""Models as data: save/load (npz + verified JSON header, no pickle), state_dict with PyTorch's names, to_full,
and refusals that name the file and the field."""
from __future__ import annotations

import hashlib
import json
import pickle
import zipfile

import numpy as np
import pytest

import genbound as gb
from genbound.nn import io


def _model(rank=1, dtype=np.float64, name="digits_gap"):
    return gb.nn.reference_cnn(name, rank=rank, seed=4, dtype=dtype, width=0.25)


def _batch(dtype=np.float64, n=5):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 1, 8, 8)).astype(dtype), np.arange(n) % 10


# -- save / load ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["digits", "digits_gap"])
@pytest.mark.parametrize("rank", [None, 1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip(tmp_path, name, rank, dtype):
    model = _model(rank, dtype, name)
    path = gb.nn.save(model, tmp_path / "m.npz")
    back = gb.nn.load(path)
    assert back.dtype == model.dtype and back.input_shape == model.input_shape and back.seed == 4
    assert repr(back) == repr(model)
    assert np.array_equal(back.get_flat(), model.get_flat())
    x, y = _batch(dtype)
    loss, grads = model.loss_and_grad(x, y)
    loss2, grads2 = back.loss_and_grad(x, y)
    assert loss2 == loss and all(np.array_equal(grads[k], grads2[k]) for k in grads)


def test_file_holds_plain_arrays_and_a_documented_header(tmp_path):
    model = _model()
    path = gb.nn.save(model, tmp_path / "m.npz")
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
    assert names == sorted(["header.npy"] + [f"params/{k}.npy" for k in model.params])
    with np.load(path, allow_pickle=False) as npz:  # nothing in it needs pickle
        arrays = {k: npz[k] for k in npz.files}
    assert all(a.dtype.kind in "fu" for a in arrays.values())
    header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    assert header["format"] == "genbound.model" and header["format_version"] == 1
    assert header["genbound_version"] == gb.__version__
    prov = header["provenance"]
    assert prov["numpy"] == np.__version__ and {"numba", "scipy", "commit", "python"} <= set(prov)
    sec = header["model"]
    assert sec["dtype"] == "float64" and sec["input_shape"] == [1, 8, 8] and sec["seed"] == 4
    assert [p["name"] for p in sec["parameters"]] == list(model.params)
    assert [tuple(p["shape"]) for p in sec["parameters"]] == [v.shape for v in model.params.values()]
    assert [layer["class"] for layer in sec["architecture"]] == [type(x).__name__ for x in model.layers]
    assert sec["architecture"][0]["config"] == dict(in_channels=1, out_channels=4, kernel_size=3, rank=1, stride=1,
                                                    padding=1, update="factor")
    # the checksum is the SHA-256 of the parameter bytes, computed here independently
    raw = b"".join(np.asarray(model.params[k], dtype="<f8").tobytes() for k in model.params)
    assert sec["sha256"] == hashlib.sha256(raw).hexdigest()
    assert gb.nn.read_header(path) == header


def test_save_writes_atomically_and_refuses_bad_input(tmp_path):
    model = _model()
    gb.nn.save(model, tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    with pytest.raises(TypeError, match="model: expected a genbound.nn.Sequential"):
        gb.nn.save("model", tmp_path / "x.npz")
    with pytest.raises(TypeError, match="path: expected a str or path"):
        gb.nn.save(model, 3)
    model.params["0.q"][0, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"param '0\.q'"):
        gb.nn.save(model, tmp_path / "nan.npz")
    assert not (tmp_path / "nan.npz").exists()


def _rewrite(path, out, edit_header=None, edit_arrays=None, keep_manifest=True):
    """Rewrite a saved file as a person editing it with numpy would (zip CRCs stay valid)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    if edit_arrays:
        edit_arrays(arrays)
    if edit_header:
        edit_header(header)
    blob = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(out, "wb") as fh:
        np.savez(fh, header=blob, **arrays)
    return out


def _forge(path, out, edit_header):
    """A file whose header was changed and whose checksums were recomputed: only the content checks remain."""
    header, arrays = io.read_archive(path, (io.MODEL_FORMAT,))
    for key in ("arrays", "header_sha256"):
        header.pop(key)
    edit_header(header)
    return io.write_archive(out, header, arrays)


def _set(path, value):
    def edit(obj):
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def test_one_changed_parameter_is_refused_by_name(tmp_path):
    path = gb.nn.save(_model(), tmp_path / "m.npz")

    def bump(arrays):
        arrays["params/3.q"][1, 0, 2] += 1e-9

    bad = _rewrite(path, tmp_path / "bad.npz", edit_arrays=bump)
    with pytest.raises(ValueError, match=r"bad\.npz: params/3\.q: sha256 mismatch"):
        gb.nn.load(bad)


def test_flipped_byte_and_truncation_are_refused_by_name(tmp_path):
    path = gb.nn.save(_model(), tmp_path / "m.npz")
    data = bytearray(path.read_bytes())
    at = data.find(np.ascontiguousarray(_model().params["0.p"]).tobytes()) + 3  # inside the array's values
    assert at > 3
    flipped = tmp_path / "flipped.npz"
    data[at] ^= 0x10
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped\.npz: .*params/0\.p"):
        gb.nn.load(flipped)
    raw = path.read_bytes()
    for cut in (len(raw) - 1, len(raw) // 2, 10, 0):
        short = tmp_path / f"short{cut}.npz"
        short.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=rf"short{cut}\.npz: .*(truncated|damaged)"):
            gb.nn.load(short)


@pytest.mark.parametrize("edit,match", [
    (_set(["model", "dtype"], "float32"), "header_sha256: the header does not match its checksum"),
    (_set(["model", "seed"], 5), "header_sha256"),
    (_set(["header_sha256"], "0" * 64), "header_sha256"),
])
def test_edited_header_is_refused(tmp_path, edit, match):
    path = gb.nn.save(_model(), tmp_path / "m.npz")
    with pytest.raises(ValueError, match=rf"bad\.npz: {match}"):
        gb.nn.load(_rewrite(path, tmp_path / "bad.npz", edit_header=edit))


@pytest.mark.parametrize("edit,match", [
    (_set(["model", "architecture", 0, "class"], "os.system"), r"model\.architecture\[0\]\.class: unknown layer"),
    (_set(["model", "architecture", 6, "class"], "Lambda"), r"model\.architecture\[6\]\.class: unknown layer"),
    (_set(["model", "architecture", 0, "config", "rank"], 2), r"model\.parameters\[0\]"),
    (_set(["model", "architecture", 0, "config", "rank"], -1), r"model\.architecture\[0\]\.config: cannot build"),
    (_set(["model", "architecture", 0, "config", "bogus"], 1), r"model\.architecture\[0\]\.config: cannot build"),
    (_set(["model", "architecture", 0, "config", "rank"], [1]),
     r"model\.architecture\[0\]\.config: expected plain"),
    (_set(["model", "architecture"], []), r"model\.architecture: expected at least one layer"),
    (_set(["model", "dtype"], "float16"), r"model\.dtype"),
    (_set(["model", "dtype"], "int64"), r"model\.dtype"),
    (_set(["model", "input_shape"], [2, 8, 8]), r"model\.architecture: the layers do not form a network"),
    (_set(["model", "input_shape"], "1x8x8"), r"model\.input_shape"),
    (_set(["model", "seed"], -2), r"model\.seed"),
    (_set(["model", "parameters", 1, "shape"], [4, 1, 2]), r"model\.parameters\[1\]\.shape"),
    (_set(["model", "sha256"], "f" * 64), r"model\.sha256: the parameters do not match"),
    (_set(["format"], "something.else"), r"format: expected 'genbound\.model'"),
    (_set(["format_version"], 2), r"format_version: this genbound reads version 1"),
])
def test_forged_header_is_refused_by_field(tmp_path, edit, match):
    path = gb.nn.save(_model(), tmp_path / "m.npz")
    with pytest.raises(ValueError, match=rf"bad\.npz: {match}"):
        gb.nn.load(_forge(path, tmp_path / "bad.npz", edit))


def test_missing_or_extra_entries_are_refused(tmp_path):
    path = gb.nn.save(_model(), tmp_path / "m.npz")

    def drop(arrays):
        del arrays["params/0.t"]

    def add(arrays):
        arrays["params/9.weight"] = np.zeros(3)

    for edit, what in ((drop, r"missing from the file \['params/0.t'\]"),
                       (add, r"not in the header \['params/9.weight'\]")):
        with pytest.raises(ValueError, match=rf"bad\.npz: arrays: .*{what}"):
            gb.nn.load(_rewrite(path, tmp_path / "bad.npz", edit_arrays=edit))


def test_pickles_and_foreign_files_are_never_loaded(tmp_path):
    evil = tmp_path / "evil.npz"
    evil.write_bytes(pickle.dumps({"flat": np.zeros(3)}))
    with pytest.raises(ValueError, match="evil.npz: not a genbound file|evil.npz: not a complete genbound file"):
        gb.nn.load(evil)
    obj = tmp_path / "obj.npz"
    with open(obj, "wb") as fh:
        np.savez(fh, header=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"obj\.npz: (entry 'header'|not a genbound file).*pickle"):
        gb.nn.load(obj)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single.npy: not a genbound file"):
        gb.nn.load(single)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"plain\.npz: header: missing"):
        gb.nn.load(plain)
    with pytest.raises(FileNotFoundError, match="path: no file"):
        gb.nn.load(tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="path: expected a str or path"):
        gb.nn.load(None)


# -- state_dict -------------------------------------------------------------------------------------------

def test_state_dict_has_pytorch_names_and_shapes():
    full, cp = _model(rank=None, name="digits"), _model(rank=2, name="digits")
    sd = full.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"]
    assert sd["0.weight"].shape == (4, 1, 3, 3) and sd["3.weight"].shape == (8, 4, 3, 3)
    assert sd["7.weight"].shape == (10, 8 * 2 * 2) and sd["7.bias"].shape == (10,)
    sd = cp.state_dict()
    assert list(sd) == ["0.p", "0.q", "0.t", "0.bias", "3.p", "3.q", "3.t", "3.bias", "7.weight", "7.bias"]
    assert sd["3.p"].shape == (8, 2, 4) and sd["3.q"].shape == (8, 2, 3) and sd["3.t"].shape == (8, 2, 3)
    # copies, not views
    sd["0.p"][...] = 0
    assert not np.all(cp.params["0.p"] == 0)


def test_load_state_dict_round_trip_and_conversion():
    a, b = _model(rank=1), _model(rank=1)
    b.set_flat(np.zeros(b.n_params))
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a.get_flat(), b.get_flat())
    c = _model(rank=1, dtype=np.float32)
    c.load_state_dict(a.state_dict())  # float64 values into a float32 model
    assert np.array_equal(c.get_flat(), a.get_flat().astype(np.float32))


@pytest.mark.parametrize("edit,exc,match", [
    (lambda d: d.pop("0.q"), ValueError, r"missing \['0\.q'\]"),
    (lambda d: d.update({"7.weight": np.zeros(2)}), ValueError, r"unexpected \['7\.weight'\]"),
    (lambda d: d.update({"0.p": np.zeros((4, 1, 2))}), ValueError,
     r"state_dict\['0\.p'\]: expected shape \(4, 1, 1\)"),
    (lambda d: d["6.weight"].__setitem__((0, 0), np.inf), ValueError, r"state_dict\['6\.weight'\]: expected finite"),
    (lambda d: d.update({"0.bias": np.zeros(4, complex)}), TypeError, r"state_dict\['0\.bias'\]"),
])
def test_load_state_dict_refuses_by_key_and_writes_nothing(edit, exc, match):
    model = _model(rank=1)
    before = model.get_flat()
    sd = {k: v * 2 for k, v in model.state_dict().items()}
    edit(sd)
    with pytest.raises(exc, match=match):
        model.load_state_dict(sd)
    assert np.array_equal(model.get_flat(), before)
    with pytest.raises(TypeError, match="state_dict: expected a mapping"):
        model.load_state_dict([1, 2])


@pytest.mark.parametrize("name", ["digits", "digits_gap"])
def test_to_full_computes_the_same_function(name):
    model = _model(rank=2, name=name)
    full = model.to_full()
    assert all(not isinstance(layer, gb.nn.CPConv2d) for layer in full.layers)
    assert isinstance(full.layers[0], gb.nn.Conv2d) and isinstance(full.layers[3], gb.nn.Conv2d)
    w = np.einsum("orc,orj,ork->ocjk", model.params["3.p"], model.params["3.q"], model.params["3.t"])
    assert np.allclose(full.params["3.weight"], w, rtol=0, atol=1e-15)
    x, y = _batch(n=8)
    assert np.allclose(full.forward(x), model.forward(x), rtol=0, atol=1e-12)
    assert full.loss(x, y) == pytest.approx(model.loss(x, y), abs=1e-12)
    assert full.seed == model.seed and full.dtype == model.dtype
    # the full model of a full model is itself
    again = full.to_full()
    assert np.array_equal(again.get_flat(), full.get_flat())


# -- NaN and inf parameters are refused, naming the parameter ------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda m, x, y: m.loss_and_grad(x, y),
    lambda m, x, y: m.evaluate(x, y),
    lambda m, x, y: m.forward(x),
    lambda m, x, y: m.loss(x, y),
    lambda m, x, y: m.error(x, y),
    lambda m, x, y: m.hvp(x, y, np.ones(m.n_params)),
])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_are_refused(call, bad):
    model = _model(rank=1)
    x, y = _batch()
    model.params["3.t"][2, 0, 1] = bad
    with pytest.raises(ValueError, match=r"model parameters: expected finite values, got 1 NaN or inf in "
                                         r"param '3\.t'"):
        call(model, x, y)


def test_finiteness_check_does_not_misfire_on_large_finite_values():
    model = _model(rank=1, dtype=np.float32)
    v = model.get_flat()
    v[:4] = 3e38  # the sum overflows, every value is finite
    model.set_flat(v)
    assert model.check_finite() is model


@pytest.mark.parametrize("shape,exc", [(("a",), TypeError), ("1x8x8", TypeError), (3, TypeError),
                                       ((1, 0, 8), ValueError), ((1, 8.5, 8), TypeError)])
def test_input_shape_is_checked(shape, exc):
    with pytest.raises(exc, match="input_shape"):
        gb.nn.Sequential([gb.nn.Flatten(), gb.nn.Dense(64, 10)], input_shape=shape)
