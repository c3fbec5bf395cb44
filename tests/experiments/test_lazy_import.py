"""genbound.experiments imports its names on first use: every public name resolves (to the object its submodule
defines), and a sweep worker's import of genbound.experiments.sweep leaves the experiments unimported."""
import importlib
import subprocess
import sys

import genbound.experiments as ex


def test_every_public_name_resolves_to_its_definition():
    for name in ex.__all__:
        value = getattr(ex, name)
        if name == "cells":
            assert value is importlib.import_module("genbound.experiments.cells")
            continue
        module = importlib.import_module(value.__module__) if hasattr(value, "__module__") else None
        assert module is None or getattr(module, name, value) is value, name
    assert callable(ex.sweep) and callable(ex.reproduce)  # not the submodules of the same names


def test_a_sweep_worker_does_not_import_the_experiments():
    code = ("import sys, genbound.experiments.sweep; "
            "print(sorted(m for m in sys.modules if m.startswith(('genbound.experiments.', 'genbound.landscape'))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    loaded = eval(out)  # a list of module names printed by the child
    assert "genbound.experiments.sweep" in loaded
    assert not any(m.startswith("genbound.landscape") for m in loaded), loaded
    assert "genbound.experiments.compression" not in loaded and "genbound.experiments.batch_claims" not in loaded


def test_the_lazy_map_and_all_list_the_same_names():
    """__all__ stays a literal list (the API docs read it statically), so it is checked against the lazy map."""
    assert sorted(ex.__all__) == sorted([*ex._WHERE, "sweep", "EXPERIMENTS", "reproduce", "cells"])
