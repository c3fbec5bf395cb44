"""numba's on-disk cache stays correct: it only notices edits to a kernel's own file, so kernel files are
self-contained, and an edited helper changes what a cached kernel computes."""
import ast
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba

import genbound
from genbound._kernels import activation as kact
from genbound._kernels import conv as kconv
from genbound._kernels import cpconv as kcp
from genbound._kernels import pool as kpool

KERNELS = (kact, kconv, kcp, kpool)
KERNEL_DIR = Path(kconv.__file__).parent


SHARED_DATA = "genbound._kernels.geometry"  # the one shape tuple: data only, its fields checked by each file


def test_kernel_files_import_nothing_from_genbound():
    for path in sorted(KERNEL_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                allowed = node.module == SHARED_DATA and path.stem != "geometry"
                assert node.level == 0 and (allowed or not (node.module or "").startswith("genbound")), (
                    path.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("genbound") for alias in node.names), path.name


def test_one_set_of_njit_options_for_every_kernel():
    assert kact._NJIT == kconv._NJIT == kcp._NJIT == kpool._NJIT
    assert kconv._NJIT["cache"] is True
    for module in KERNELS:
        kernels = [obj for obj in vars(module).values() if isinstance(obj, numba.core.registry.CPUDispatcher)]
        assert kernels
        for kernel in kernels:
            assert kernel.py_func.__module__ == module.__name__, (module.__name__, kernel.__name__)
            options = {key: value for key, value in module._NJIT.items() if key != "cache"}
            assert options.items() <= kernel.targetoptions.items(), kernel.__name__
            assert not isinstance(kernel._cache, numba.core.caching.NullCache), kernel.__name__


SCRIPT = """
import numpy as np
from genbound._kernels import cpconv as kcp

n, c, o, r, h, w = 4, 2, 3, 1, 4, 4
rng = np.random.default_rng(0)
x = rng.normal(size=(n, c, h * w))
factors = (rng.normal(size=(o * r, c)), rng.normal(size=(o, r, 3)), rng.normal(size=(o, r, 3)))
geo = kcp.Geometry(h, w, 3, 3, 1, 1, h, w, 32, 1)
y = np.empty((n, o, h * w))
kcp.cp_forward(x, factors, np.zeros(o), geo, False, False, 0, 1, y, np.zeros((1, 1, 1), np.int32))
print(repr(float(np.abs(y).sum())))
"""


def test_editing_a_helper_changes_the_cached_kernel(tmp_path):
    """Run a CP kernel from a copy of the package (filling a private cache), edit the helper that stacks
    images, run again: the cached kernel must be recompiled and compute something else."""
    root = tmp_path / "src"
    shutil.copytree(Path(genbound.__file__).parent, root / "genbound",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(root))

    def run():
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True,
                             text=True, check=True)
        return float(out.stdout)

    first = run()
    assert run() == first
    helper = kcp._stack.py_func
    source = inspect.getsource(helper)
    edited = source.replace("dst[i] = src[i]", "dst[i] = 2 * src[i]")
    assert edited != source
    path = root / Path(inspect.getsourcefile(helper)).relative_to(Path(genbound.__file__).parent.parent)
    text = path.read_text()
    assert text.count(source) == 1
    path.write_text(text.replace(source, edited))
    assert abs(run() - 2 * first) <= 1e-9 * first


def test_the_shared_geometry_module_holds_no_compiled_code():
    from genbound._kernels import geometry

    assert not [obj for obj in vars(geometry).values() if isinstance(obj, numba.core.registry.CPUDispatcher)]
    assert kconv.Geometry is kcp.Geometry is geometry.Geometry
    assert kconv._GEOMETRY_FIELDS == kcp._GEOMETRY_FIELDS == geometry.Geometry._fields


def test_every_convolution_kernel_sees_one_geometry_type():
    """numba keys its dispatch on field types, not classes: two geometry classes of the same shape sent every
    call of the class seen second through numba's slow path (a digits rank-1 step 2.5x slower in a process that
    had run a full-filter network first; benchmarks/vs_torch.py ran the cases in that order). One class, one
    numba type."""
    from numba import typeof

    geo = kconv.Geometry(8, 8, 3, 3, 1, 1, 8, 8, 8, 4)
    assert typeof(geo) == typeof(kcp.Geometry(*geo))
    assert typeof(geo).instance_class is kcp.Geometry

