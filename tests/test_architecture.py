"""The library's shape: no package reaches into another's private names, and data flows one way."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "genbound"
SHARED_PRIVATE = {"_checks", "_rng", "_kernels", "_io"}
# The direction of data flow. factor is CP algebra on plain arrays (the engine's CP projection step uses it),
# so it sits beside data below nn; bounds may use landscape (Hessian effective dimension) and factor.
# A package may import its own level's shared modules only when the levels differ, never a higher level.
LAYER = {"data": 0, "factor": 0, "nn": 1, "symbolic": 2, "landscape": 2, "testing": 2, "bounds": 3,
         "experiments": 4, "cli": 5}


def _package_of(path):
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py") if len(parts) > 1 or parts[0] != "__init__.py" else "__init__"


def _rel(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _sources(*roots):
    for root in roots:
        yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _private_names_defined(tree):
    """Private names a file defines: functions, classes, module globals and ``self._x`` attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {n for n in names if n.startswith("_")}


def _genbound_private_names():
    names = set()
    for path in _sources(PACKAGE):
        names |= _private_names_defined(ast.parse(path.read_text()))
    return names


def _private_reach_ins(path, own, known=None):
    """Imports of another package's private module or name, and uses of a private attribute that genbound
    defines elsewhere but this file does not (``obj._method(`` on another package's object)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    known = _genbound_private_names() if known is None else known
    local = _private_names_defined(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genbound"):
            mods = node.module.split(".")[1:]
            if not mods:
                continue
            if mods[0] in SHARED_PRIVATE or mods[0] == own:
                continue
            if any(m.startswith("_") for m in mods) or any(a.name.startswith("_") for a in node.names):
                hits.append(f"{_rel(path)}:{node.lineno}: from {node.module} import "
                            + ", ".join(a.name for a in node.names))
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
              and node.attr in known and node.attr not in local):
            hits.append(f"{_rel(path)}:{node.lineno}: .{node.attr}")
    return hits


def test_no_package_reaches_into_another_packages_private_names():
    hits, known = [], _genbound_private_names()
    for path in _sources(PACKAGE):
        own = _package_of(path)
        if own == "_kernels":
            continue
        hits += _private_reach_ins(path, own, known)
    assert not hits, "private names reached across packages:\n" + "\n".join(hits)


@pytest.mark.parametrize("folder", ["tests", "derivations", "benchmarks", "docs"])
def test_tests_scripts_and_docs_import_only_public_names(folder):
    hits, known = [], _genbound_private_names()
    for path in _sources(ROOT / folder):
        hits += [hit for hit in _private_reach_ins(path, None, known) if " import " in hit]
    assert not hits, "private genbound names imported:\n" + "\n".join(hits)


def test_lower_layers_never_import_higher_ones():
    hits = []
    for path in _sources(PACKAGE):
        own = _package_of(path)
        if own not in LAYER:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "genbound" and len(parts) > 1 and parts[1] in LAYER:
                    if LAYER[parts[1]] > LAYER[own] or (LAYER[parts[1]] == LAYER[own] and parts[1] != own):
                        hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: {own} imports {name}")
    assert not hits, "imports against the direction of data flow:\n" + "\n".join(hits)


def test_the_checker_finds_a_planted_reach_in(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("from genbound.nn.model import _serial_blas\nx = model._flat\n")
    assert len(_private_reach_ins(planted, own="bounds")) == 2
    planted.write_text("class A:\n    def __init__(self):\n        self._flat = 1\n\n\nb = A()._flat\n")
    assert _private_reach_ins(planted, own="bounds") == []
