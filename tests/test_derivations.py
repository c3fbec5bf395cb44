"""The derivation scripts: each runs as a script, reports, and exits non-zero when a check fails."""
from __future__ import annotations

import ast
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from genbound import symbolic

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = ROOT / "derivations"
EXPECTED = ["chain_rule", "eq1_samples", "eq2", "eq3_order_d", "eq3_rank1", "eq3_rank_r",
            "first_order_departure", "rank1_dimension"]


def scripts():
    return sorted(p for p in DERIVATIONS.glob("*.py") if not p.name.startswith("_"))


def test_every_expected_script_exists_and_no_package():
    names = [p.stem for p in scripts()]
    for name in EXPECTED:
        assert name in names
    assert not (DERIVATIONS / "__init__.py").exists()


@pytest.mark.parametrize("name", EXPECTED)
def test_script_has_a_collected_test_and_a_main(name):
    tree = ast.parse((DERIVATIONS / f"{name}.py").read_text())
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert any(f.startswith("test_") for f in functions)
    assert "main" in functions
    assert ast.get_docstring(tree)


@pytest.mark.parametrize("name", EXPECTED)
def test_script_runs_as_main(name, capsys):
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(DERIVATIONS / f"{name}.py"), run_name="__main__")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "checks as expected" in out and "FAILED" not in out


def test_script_from_another_directory(tmp_path):
    # the genbound of this checkout, whichever one is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(DERIVATIONS / "eq3_rank1.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "alpha**2*g_p*t*(g_q - g_t)" in proc.stdout
    assert "[ok] eq3_printed: does not hold" in proc.stdout


def test_script_exits_non_zero_when_a_check_fails(monkeypatch, capsys):
    broken = symbolic.Verification("eq3", "a deliberately broken check", False, sp.Integer(1), "")
    monkeypatch.setattr(symbolic.verifications, "verify_eq3", lambda printed=False: broken)
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(DERIVATIONS / "eq3_rank1.py"), run_name="__main__")
    assert exc.value.code == 1
    assert "FAILED" in capsys.readouterr().out


def test_every_registered_check_belongs_to_a_script_that_runs_it():
    names = {p.stem for p in scripts()}
    registered = {check.script for check in symbolic.REGISTRY}
    assert registered == set(EXPECTED) and registered <= names
    for name in registered:
        source = (DERIVATIONS / f"{name}.py").read_text()
        assert f'symbolic.run_checks("{name}")' in source


def test_registry_is_the_one_list():
    # genbound derive and all_verifications run exactly the scripts' registered checks, names unique
    by_script = [c for name in dict.fromkeys(c.script for c in symbolic.REGISTRY) for c in symbolic.registered(name)]
    assert sorted(map(repr, by_script)) == sorted(map(repr, symbolic.registered()))
    everything = symbolic.all_verifications()
    assert len({v.name for v in everything}) == len(everything) == len(symbolic.REGISTRY)
    assert [v.name for v in everything if not v.expected] == ["eq3_printed"]
    with pytest.raises(ValueError, match="script: expected one of"):
        symbolic.registered("no_such_script")
