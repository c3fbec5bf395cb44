"""The library's shape: no package reaches into another's private names, and data flows one way."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "genbound"
SHARED_PRIVATE = {"_checks", "_rng", "_kernels"}
# data -> nn -> factor / landscape / bounds -> experiments -> cli: what each package may import
LAYER = {"data": 0, "nn": 1, "factor": 2, "symbolic": 2, "landscape": 2, "bounds": 2, "testing": 2,
         "experiments": 3, "cli": 4}


def _package_of(path):
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py") if len(parts) > 1 or parts[0] != "__init__.py" else "__init__"


def _sources(*roots):
    for root in roots:
        yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _private_reach_ins(path, own):
    """Imports of another package's private module or name, and calls of a private attribute of an object
    that is not ``self``/``cls`` (``obj._method(``), in one source file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genbound"):
            mods = node.module.split(".")[1:]
            if not mods:
                continue
            if mods[0] in SHARED_PRIVATE or mods[0] == own:
                continue
            if any(m.startswith("_") for m in mods) or any(a.name.startswith("_") for a in node.names):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import "
                            + ", ".join(a.name for a in node.names))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if isinstance(base, ast.Name) and base.id[:1].isupper():
                continue  # a class's own private constant, e.g. ClassName._CACHE inside its module
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    return hits


def test_no_package_reaches_into_another_packages_private_names():
    hits = []
    for path in _sources(PACKAGE):
        own = _package_of(path)
        if own == "_kernels":
            continue
        hits += _private_reach_ins(path, own)
    assert not hits, "private names reached across packages:\n" + "\n".join(hits)


@pytest.mark.parametrize("folder", ["tests", "derivations", "benchmarks", "docs"])
def test_tests_scripts_and_docs_use_the_public_api(folder):
    hits = []
    for path in _sources(ROOT / folder):
        for hit in _private_reach_ins(path, own=None):
            if "from genbound" in hit:
                hits.append(hit)
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
                    if LAYER[parts[1]] > LAYER[own] or (LAYER[parts[1]] == LAYER[own] and parts[1] != own
                                                         and own != "testing" and parts[1] != "factor"):
                        hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: {own} imports {name}")
    assert not hits, "imports against the direction of data flow:\n" + "\n".join(hits)


def test_the_checker_finds_a_planted_reach_in(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("from genbound.landscape._common import train_xy\nx = model._flat\n")
    assert len(_private_reach_ins(planted, own="bounds")) == 2
