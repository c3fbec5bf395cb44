"""Models and checkpoints as data: one ``.npz`` archive of plain arrays and a JSON header, never a pickle.

File format (``format_version`` 1)
----------------------------------
A zip archive as written by :func:`numpy.savez` (uncompressed) and read with ``allow_pickle=False``, so
opening a file never runs code from it. Its entries:

- ``header``: a uint8 array holding the UTF-8 JSON header;
- ``params/<name>``: one array per model parameter, ``<name>`` as in ``model.params`` (``"0.p"``,
  ``"6.weight"``), of the model's dtype;
- ``optimizer/<path>`` (checkpoints only): the optimizer's arrays (momentum buffers, Adam moments).

The header holds:

- ``format`` (``"genbound.model"`` or ``"genbound.checkpoint"``), ``format_version``, ``genbound_version``;
- ``provenance``: :func:`genbound._io.provenance` (genbound version, git commit when run from a checkout,
  Python, numpy, numba, scipy, sympy and pandas versions);
- ``model``: ``architecture`` (each layer's class and constructor arguments, :meth:`Sequential.architecture`),
  ``dtype``, ``input_shape``, ``seed`` (the int seed of the initialization when known, else null),
  ``parameters`` (names and shapes in the order of the flat vector), ``n_params`` and ``sha256``, the
  SHA-256 of the parameter bytes (the flat vector, little-endian, C order);
- ``arrays``: every array entry's shape, dtype and SHA-256;
- checkpoints also: ``optimizer`` (its class, settings and state, arrays referenced by entry name),
  ``rng`` (the numpy bit generator state), ``history`` (the rows so far), ``progress`` (epochs and steps
  done), ``epochs`` (asked for) and ``fingerprint`` (what the run depends on; see :func:`genbound.nn.train`);
- ``header_sha256``: the SHA-256 of the canonical JSON of all other header fields.

Reading checks all of it: a truncated or altered file, an edited header, a parameter changed by hand, a
missing or extra entry, an unknown layer class or an unsupported version is refused with a ValueError that
names the file and the field.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

from genbound._checks import check_dtype
from genbound._io import atomic_path, provenance, to_json
from genbound.nn.layers import AvgPool2d, Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU
from genbound.nn.model import Sequential

FORMAT_VERSION = 1
MODEL_FORMAT = "genbound.model"
CHECKPOINT_FORMAT = "genbound.checkpoint"

#: The layer classes a file may name; anything else is refused (a file never chooses code to run).
LAYER_CLASSES = {cls.__name__: cls for cls in (Conv2d, CPConv2d, Dense, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool,
                                               Flatten)}

_HEADER_KEY = "header"
_PARAM_PREFIX = "params/"
_ARRAY_REF = "__array__"


# --------------------------------------------------------------------------------------------------------
# Digests
# --------------------------------------------------------------------------------------------------------

def _le_bytes(a):
    """The bytes of ``a`` in C order and little-endian byte order (the same on every machine)."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def sha256_array(a):
    """SHA-256 (hex) of an array's values: its little-endian bytes in C order."""
    return hashlib.sha256(_le_bytes(a)).hexdigest()


def array_digest(a):
    """``{"shape", "dtype", "sha256"}`` of an array, as recorded in headers and run fingerprints."""
    a = np.asarray(a)
    return {"shape": list(a.shape), "dtype": a.dtype.newbyteorder("<").str, "sha256": sha256_array(a)}


def _canonical(obj):
    return to_json(obj, sort_keys=True, separators=(",", ":"))


def _header_checksum(header):
    return hashlib.sha256(_canonical({k: v for k, v in header.items() if k != "header_sha256"}).encode()).hexdigest()


def first_difference(expected, found, where=""):
    """The first place where two JSON-like values differ, as ``(path, expected, found)``, or None.

    Paths read like ``optimizer.settings.lr`` or ``model.architecture[3].config.rank``.
    """
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in list(expected) + [k for k in found if k not in expected]:
            sub = f"{where}.{key}" if where else str(key)
            if key not in expected or key not in found:
                return sub, expected.get(key, "(absent)"), found.get(key, "(absent)")
            diff = first_difference(expected[key], found[key], sub)
            if diff is not None:
                return diff
        return None
    if isinstance(expected, (list, tuple)) and isinstance(found, (list, tuple)):
        if len(expected) != len(found):
            return f"{where} (length)", len(expected), len(found)
        for i, (a, b) in enumerate(zip(expected, found)):
            diff = first_difference(a, b, f"{where}[{i}]")
            if diff is not None:
                return diff
        return None
    if type(expected) is not type(found) and not (isinstance(expected, (int, float))
                                                   and isinstance(found, (int, float))
                                                   and not isinstance(expected, bool)
                                                   and not isinstance(found, bool)):
        return where, expected, found
    return None if expected == found else (where, expected, found)


# --------------------------------------------------------------------------------------------------------
# Arrays inside JSON (optimizer states)
# --------------------------------------------------------------------------------------------------------

def split_arrays(obj, prefix):
    """Replace every ndarray in a nested dict/list by ``{"__array__": entry}``; return (JSON part, arrays)."""
    arrays = {}

    def walk(value, path):
        if isinstance(value, np.ndarray):
            key = f"{prefix}{path}"
            arrays[key] = value
            return {_ARRAY_REF: key}
        if isinstance(value, dict):
            return {str(k): walk(v, f"{path}/{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{path}/{i}" if path else str(i)) for i, v in enumerate(value)]
        return value

    return walk(obj, ""), arrays


def join_arrays(obj, arrays, path, field):
    """Inverse of :func:`split_arrays`: put the arrays back (a missing entry is refused, naming ``field``)."""
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY_REF}:
            key = obj[_ARRAY_REF]
            if key not in arrays:
                raise ValueError(f"{path}: {field}: refers to the array {key!r}, which the file lacks")
            return arrays[key]
        return {k: join_arrays(v, arrays, path, f"{field}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_arrays(v, arrays, path, f"{field}[{i}]") for i, v in enumerate(obj)]
    return obj


# --------------------------------------------------------------------------------------------------------
# The archive
# --------------------------------------------------------------------------------------------------------

def write_archive(path, header, arrays):
    """Write ``arrays`` (name -> numeric ndarray) and ``header`` (a JSON-able dict, completed with the array
    manifest and the header checksum) to ``path`` atomically: the old file or the new one, never a mix."""
    arrays = {key: np.ascontiguousarray(a) for key, a in arrays.items()}
    for key, a in arrays.items():
        if a.dtype.kind not in "fiu":  # plain numbers only: nothing numpy would pickle
            raise TypeError(f"{key}: expected a numeric array, got dtype {a.dtype}")
    header = dict(header)
    header["arrays"] = {key: array_digest(a) for key, a in arrays.items()}
    header["header_sha256"] = _header_checksum(header)
    blob = np.frombuffer(to_json(header, indent=1).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{_HEADER_KEY: blob}, **arrays)
    return path


def read_archive(path, formats):
    """The verified ``(header, arrays)`` of a file written by :func:`write_archive`.

    Raises
    ------
    ValueError
        Naming the file and the field: unreadable or truncated file, pickled content, edited header, a
        format not in ``formats`` or another version, missing or extra array, or an array whose shape,
        dtype or SHA-256 differs from the header.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"path: no file {name!r}")
    try:
        npz = np.load(name, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{name}: not a genbound file ({exc}; pickled files are never loaded)") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name}: not a complete genbound file (truncated, or not a .npz archive: {exc})") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{name}: not a genbound file (a single .npy array, expected a .npz archive)")
    with npz:
        arrays = {}
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise ValueError(f"{name}: entry {key!r}: cannot be read ({exc}); the file is damaged or "
                                 "not a genbound file") from exc
    if _HEADER_KEY not in arrays:
        raise ValueError(f"{name}: header: missing (not a genbound file)")
    blob = arrays.pop(_HEADER_KEY)
    try:
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError(f"expected a 1-d uint8 array, got {blob.dtype} {blob.shape}")
        header = json.loads(blob.tobytes().decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError(f"expected a JSON object, got {type(header).__name__}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: header: not valid JSON ({exc})") from exc
    if header.get("format") not in formats:
        raise ValueError(f"{name}: format: expected {' or '.join(map(repr, formats))}, got {header.get('format')!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{name}: format_version: this genbound reads version {FORMAT_VERSION}, the file has "
                         f"{header.get('format_version')!r}")
    if header.get("header_sha256") != _header_checksum(header):
        raise ValueError(f"{name}: header_sha256: the header does not match its checksum (it was edited or "
                         "damaged after it was written)")
    manifest = header.get("arrays")
    if not isinstance(manifest, dict):
        raise ValueError(f"{name}: arrays: expected the manifest of the file's arrays, got {manifest!r}")
    missing = sorted(set(manifest) - set(arrays))
    extra = sorted(set(arrays) - set(manifest))
    if missing or extra:
        raise ValueError(f"{name}: arrays: entries missing from the file {missing}, entries not in the header "
                         f"{extra}")
    for key, a in arrays.items():
        found = array_digest(a)
        for field in ("shape", "dtype", "sha256"):
            if manifest[key].get(field) != found[field]:
                what = {"sha256": "the values differ from those written (the array was changed after it was "
                                  "written)"}.get(field, f"the header says {manifest[key].get(field)!r}, the "
                                                         f"array has {found[field]!r}")
                raise ValueError(f"{name}: {key}: {field} mismatch: {what}")
    return header, arrays


# --------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------

def model_header(model):
    """The ``model`` section of a header: architecture, dtype, input shape, seed, parameter names, shapes and
    the SHA-256 of the parameter bytes."""
    return {"architecture": model.architecture(), "dtype": np.dtype(model.dtype).name,
            "input_shape": None if model.input_shape is None else list(model.input_shape), "seed": model.seed,
            "parameters": [{"name": key, "shape": list(value.shape)} for key, value in model.params.items()],
            "n_params": int(model.n_params), "sha256": sha256_array(model.get_flat())}


def model_arrays(model):
    """The parameter entries of a file: ``params/<name>`` -> a copy of the parameter."""
    return {_PARAM_PREFIX + key: value.copy() for key, value in model.state_dict().items()}


def _field(section, key, kind, name, field):
    if not isinstance(section, dict) or key not in section:
        raise ValueError(f"{name}: {field}: missing")
    value = section[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name}: {field}: expected {kind.__name__}, got {value!r}")
    return value


def build_model(header, name):
    """A :class:`Sequential` with the architecture of a header's ``model`` section (parameters not yet set)."""
    section = header.get("model")
    if not isinstance(section, dict):
        raise ValueError(f"{name}: model: missing")
    arch = _field(section, "architecture", list, name, "model.architecture")
    if not arch:
        raise ValueError(f"{name}: model.architecture: expected at least one layer, got none")
    layers = []
    for i, spec in enumerate(arch):
        field = f"model.architecture[{i}]"
        cls_name = _field(spec, "class", str, name, f"{field}.class")
        if cls_name not in LAYER_CLASSES:
            raise ValueError(f"{name}: {field}.class: unknown layer class {cls_name!r}; a file may only name "
                             f"{sorted(LAYER_CLASSES)}")
        config = _field(spec, "config", dict, name, f"{field}.config")
        if not all(isinstance(v, (int, str)) or v is None for v in config.values()):
            raise ValueError(f"{name}: {field}.config: expected plain ints and strings, got {config!r}")
        try:
            layers.append(LAYER_CLASSES[cls_name](**config))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: {field}.config: cannot build {cls_name} from {config!r} ({exc})") from exc
    try:
        dtype = check_dtype(_field(section, "dtype", str, name, "model.dtype"))
    except TypeError as exc:
        raise ValueError(f"{name}: model.dtype: {exc}") from exc
    input_shape = section.get("input_shape")
    if input_shape is not None and not (isinstance(input_shape, list)
                                        and all(isinstance(s, int) and s >= 1 for s in input_shape)):
        raise ValueError(f"{name}: model.input_shape: expected a list of positive ints or null, got {input_shape!r}")
    seed = section.get("seed")
    if seed is not None and not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f"{name}: model.seed: expected a non-negative int or null, got {seed!r}")
    try:
        model = Sequential(layers, seed=0 if seed is None else seed, dtype=dtype, input_shape=input_shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: model.architecture: the layers do not form a network ({exc})") from exc
    model.seed = seed
    expected = [{"name": key, "shape": list(value.shape)} for key, value in model.params.items()]
    diff = first_difference(expected, section.get("parameters"), "model.parameters")
    if diff is not None:
        raise ValueError(f"{name}: {diff[0]}: the architecture gives {diff[1]!r}, the header lists {diff[2]!r}")
    return model


def set_parameters(model, header, arrays, name):
    """Load the ``params/*`` entries into ``model`` and check the parameter SHA-256 of the header."""
    state = {}
    for key, ref in model.params.items():
        entry = _PARAM_PREFIX + key
        if entry not in arrays:
            raise ValueError(f"{name}: {entry}: missing")
        if arrays[entry].dtype != ref.dtype:
            raise ValueError(f"{name}: {entry}: expected dtype {ref.dtype} (model.dtype), got {arrays[entry].dtype}")
        state[key] = arrays[entry]
    try:
        model.load_state_dict(state)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    if sha256_array(model.get_flat()) != header["model"].get("sha256"):
        raise ValueError(f"{name}: model.sha256: the parameters do not match the checksum of the header")
    return model


def save(model, path):
    """Write ``model`` to ``path`` (one ``.npz`` archive, written atomically; no pickle anywhere).

    The file holds the parameters as plain arrays and a JSON header with the architecture, dtype, input shape,
    parameter names and shapes, the seed when known, the SHA-256 of the parameter bytes and the provenance
    (genbound version, git commit, numpy/numba/scipy versions). The format is described in
    :mod:`genbound.nn.io`; :func:`load` reads it back.

    Parameters
    ----------
    model : Sequential
        Its parameters must be finite.
    path : str or path
        Written as given (no suffix is added); ``.npz`` is the customary one.

    Returns
    -------
    path
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a genbound.nn.Sequential, got {type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or path, got {type(path).__name__}")
    model.check_finite()
    header = {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "genbound_version": provenance()["genbound"],
              "provenance": provenance(), "model": model_header(model)}
    return write_archive(path, header, model_arrays(model))


def read_header(path):
    """The verified JSON header of a model or checkpoint file (see :mod:`genbound.nn.io`), without building
    the model: provenance, architecture, parameter names, history of a checkpoint."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or path, got {type(path).__name__}")
    return read_archive(path, (MODEL_FORMAT, CHECKPOINT_FORMAT))[0]


def load(path):
    """Read a model written by :func:`save` (or the model of a training checkpoint).

    Everything is checked before a model is returned: the archive, the header checksum, the format version,
    every array's shape, dtype and SHA-256, the layer classes (only genbound's own), the parameter names and
    shapes against the architecture, and the SHA-256 of the parameter bytes.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    Sequential
        With ``seed`` as saved (None when unknown).

    Raises
    ------
    ValueError
        Naming the file and the field that is wrong.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or path, got {type(path).__name__}")
    name = os.fspath(path)
    header, arrays = read_archive(name, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    return set_parameters(build_model(header, name), header, arrays, name)


# --------------------------------------------------------------------------------------------------------
# Checkpoints (written and read by genbound.nn.train)
# --------------------------------------------------------------------------------------------------------

def write_checkpoint(path, model, optimizer_state, rng_state, history, progress, epochs, fingerprint):
    """Write a training checkpoint (the format of :func:`save` plus the run's state) atomically.

    ``optimizer_state`` is the optimizer's ``state_dict()`` (arrays become ``optimizer/...`` entries),
    ``rng_state`` the bit generator's ``state``, ``history`` the list of rows so far, ``progress``
    ``{"epoch", "step"}`` done, ``epochs`` the number asked for, ``fingerprint`` what the run depends on.
    """
    opt_json, opt_arrays = split_arrays(optimizer_state, "optimizer/")
    header = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION,
              "genbound_version": provenance()["genbound"], "provenance": provenance(),
              "model": model_header(model), "optimizer": opt_json, "rng": rng_state, "history": history,
              "progress": progress, "epochs": epochs, "fingerprint": fingerprint}
    return write_archive(path, header, {**model_arrays(model), **opt_arrays})


def read_checkpoint(path):
    """The verified contents of a checkpoint: a dict with ``header``, ``model`` (a :class:`Sequential` with the
    saved parameters) and ``optimizer`` (its ``state_dict`` with the arrays put back)."""
    name = os.fspath(path)
    header, arrays = read_archive(name, (CHECKPOINT_FORMAT,))
    for field, kind in (("optimizer", dict), ("rng", dict), ("history", list), ("progress", dict),
                        ("epochs", int), ("fingerprint", dict)):
        _field(header, field, kind, name, field)
    for field in ("epoch", "step"):
        value = _field(header["progress"], field, int, name, f"progress.{field}")
        if value < 0:
            raise ValueError(f"{name}: progress.{field}: expected a non-negative int, got {value}")
    model = set_parameters(build_model(header, name), header, arrays, name)
    optimizer = join_arrays(header["optimizer"], arrays, name, "optimizer")
    return {"header": header, "model": model, "optimizer": optimizer}
