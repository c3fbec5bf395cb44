"""Atomic result files, stale temporaries, writable-folder checks and provenance."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from genbound import _io


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "r.json"
    _io.atomic_write_json(path, {"a": np.float64(1.5), "b": np.arange(3), "c": (1, 2)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": [1, 2]}
    _io.atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "r.txt"
    _io.atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with _io.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]


def test_non_finite_numbers_are_refused_in_json(tmp_path):
    with pytest.raises(ValueError):
        _io.atomic_write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".tmp-ckpt.npz.abc").write_text("x")
    (tmp_path / ".tmp-other.abc").write_text("x")
    (tmp_path / "keep.npz").write_text("x")
    assert _io.remove_stale_temporaries(tmp_path, "ckpt.npz") == 1
    assert _io.remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]


def test_unwritable_folder_is_refused_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="out: cannot write in folder"):
        _io.check_writable_folder(blocker / "sub")
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="out: cannot write"):
            _io.check_writable_folder(ro)


def test_provenance_names_versions():
    p = _io.provenance()
    import genbound

    assert p["genbound"] == genbound.__version__
    assert p["numpy"] == np.__version__
    assert set(p) >= {"commit", "python", "numba", "scipy", "sympy", "pandas"}
