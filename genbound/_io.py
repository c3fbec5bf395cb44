"""Writing results so that nothing finished is ever lost: atomic files, JSON, and provenance."""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import platform
import subprocess
import tempfile

import numpy as np

_TMP_PREFIX = ".tmp-"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, pathlib.PurePath):
        return os.fspath(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return {"type": type(obj).__name__, **_jsonable(dataclasses.asdict(obj))}
    return obj


def to_json(obj, **kwargs):
    """``obj`` as JSON text; numpy scalars and arrays, paths and dataclasses are converted."""
    return json.dumps(_jsonable(obj), allow_nan=False, **kwargs)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one ``os.replace``.

    A crash before the end leaves ``path`` as it was (the old file or none) and at most a ``.tmp-*`` file in
    the same folder, which :func:`remove_stale_temporaries` deletes.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX + path.name + ".", dir=path.parent)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` atomically (all of it or nothing)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, to_json(obj, indent=2, sort_keys=True) + "\n")


def remove_stale_temporaries(folder, name=None):
    """Delete the ``.tmp-*`` files that an interrupted atomic write left in ``folder`` (for ``name`` only,
    when given). Returns the number removed."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return 0
    pattern = _TMP_PREFIX + (f"{name}.*" if name else "*")
    n = 0
    for p in folder.glob(pattern):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            n += 1
    return n


def check_writable_folder(folder, name="out"):
    """Create ``folder`` if needed and check that files can be written in it, before any work is done."""
    folder = pathlib.Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=_TMP_PREFIX + "probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{name}: cannot write in folder {os.fspath(folder)!r} ({exc.strerror or exc})") from exc
    return folder


def _git_commit():
    root = pathlib.Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", os.fspath(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", os.fspath(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty else "")


_PROVENANCE = None


def provenance():
    """What produced a result: genbound's version, the git commit when run from a checkout (``-dirty`` with
    uncommitted changes), Python and the versions of numpy, numba, scipy, sympy and pandas."""
    global _PROVENANCE
    if _PROVENANCE is None:
        import importlib.metadata as md

        import genbound

        versions = {}
        for pkg in ("numpy", "numba", "scipy", "sympy", "pandas"):
            try:
                versions[pkg] = md.version(pkg)
            except md.PackageNotFoundError:
                versions[pkg] = None
        _PROVENANCE = {"genbound": genbound.__version__, "commit": _git_commit(),
                       "python": platform.python_version(), **versions}
    return dict(_PROVENANCE)
