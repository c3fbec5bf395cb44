"""The documentation site: it builds strictly, its tutorials run, and the names it mentions exist.

- ``mkdocs build --strict`` fails on a broken link, a missing page or anchor, or a docstring that
  mkdocstrings cannot render; the API pages show no raw Sphinx role or math directive.
- Every ``python`` code block of ``docs/tutorials/*.md`` runs, in order and in one namespace, in a fresh
  folder; a block titled ``title="name.py"`` is written to that folder as a file instead (importable by the
  later blocks), and every written ``test_*.py`` is then run by pytest in its own process.
- Every dotted ``genbound.`` name (or ``gb.`` in a block that does ``import genbound as gb``) in a code span
  or code block of any page resolves to a module or attribute.
"""
import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
# CPU seconds one tutorial may take (this process and its threads; all tutorials together take about
# 40 s on a warm numba cache). CPU time, not wall time: on a loaded shared machine the wall time of the
# same work varies threefold.
TUTORIAL_BUDGET_S = 60.0

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   flags=re.S | re.M)


def code_blocks(text):
    """``(language, title, body)`` of every fenced block of a Markdown text, in order."""
    blocks = []
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        lang = info.split()[0] if info else ""
        title = re.search(r'title="([^"]+)"', info)
        indent = match["indent"]
        body = "\n".join(line[len(indent):] if line.startswith(indent) else line
                         for line in match["body"].splitlines())
        blocks.append((lang, title[1] if title else None, body + "\n"))
    return blocks


def code_spans(text):
    """Contents of the inline code spans of a Markdown text outside fenced blocks."""
    return re.findall(r"`([^`\n]+)`", FENCE.sub("", text))


# ------------------------------------------------------------------------------------------------ build

def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs tools come with the `test` extra: pip install -e '.[test]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"),
                           "--config-file", str(ROOT / "mkdocs.yml")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    assert "WARNING" not in log, log[-6000:]
    site = tmp_path / "site"
    for page in ("index.html", "api/nn/index.html", "theory/rank1_update/index.html", "comparison/index.html"):
        assert (site / page).is_file(), page
    # the API reference is generated from the docstrings, not empty
    nn_page = (site / "api/nn/index.html").read_text()
    assert "genbound.nn.CPConv2d" in nn_page and "genbound.nn.train" in nn_page
    # the docstrings' Sphinx roles and math are rewritten for Markdown (docs/hooks/griffe_rst.py)
    for page in (site / "api").glob("*/index.html"):
        html = page.read_text()
        assert ":func:" not in html and ".. math::" not in html and ":math:" not in html, page
    assert 'class="arithmatex"' in (site / "api/bounds/index.html").read_text()
    # formulas are left for KaTeX as arithmatex spans
    assert 'class="arithmatex"' in (site / "theory/rank1_update/index.html").read_text()
    assert seconds < 120, f"the strict build took {seconds:.0f} s"


def test_every_public_name_has_a_reference_entry():
    """Each package's ``__all__`` is rendered on its API page (``::: genbound.<package>``)."""
    packages = ["data", "nn", "factor", "symbolic", "bounds", "landscape", "experiments", "testing"]
    for name in packages:
        page = (DOCS / "api" / f"{name}.md").read_text()
        assert f"::: genbound.{name}\n" in page, name
        module = importlib.import_module(f"genbound.{name}")
        assert getattr(module, "__all__", None), f"genbound.{name} has no __all__ to render"
        # a public function named like its own submodule (genbound.nn.train) is shown by the renderer as the
        # module: such names need an explicit entry on the page
        submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
        for shadowed in sorted(set(module.__all__) & submodules):
            if not inspect.ismodule(getattr(module, shadowed)):
                assert f"::: genbound.{name}.{shadowed}.{shadowed}\n" in page, f"api/{name}.md lacks {shadowed}"


# -------------------------------------------------------------------------------------------- tutorials

def test_code_blocks_parser():
    text = ('x\n```python\na = 1\n```\n\n    ```python title="m.py"\n    def f():\n        return 1\n    ```\n'
            '```bash\nls\n```\n')
    assert code_blocks(text) == [("python", None, "a = 1\n"), ("python", "m.py", "def f():\n    return 1\n"),
                                 ("bash", None, "ls\n")]
    assert code_spans("a `gb.nn` b\n```python\n`no`\n```\n") == ["gb.nn"]


@pytest.mark.parametrize("page", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs(page, tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    blocks = [(title, body) for lang, title, body in code_blocks(page.read_text()) if lang == "python"]
    assert blocks, f"{page.name} has no python block"
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {"__name__": f"tutorial_{page.stem}"}
    written = []
    start = time.process_time()
    try:
        for i, (title, body) in enumerate(blocks):
            if title:
                (tmp_path / title).write_text(body)
                written.append(title)
                importlib.invalidate_caches()
                continue
            try:
                exec(compile(body, f"{page.name}[block {i}]", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{page.name}, python block {i} failed:\n{body}") from exc
    finally:
        import matplotlib.pyplot as plt
        plt.close("all")
        for title in written:
            sys.modules.pop(pathlib.Path(title).stem, None)
    for title in written:
        if pathlib.Path(title).name.startswith("test_"):
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", title],
                                  cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                      [str(ROOT), os.environ.get("PYTHONPATH", "")])})
            assert proc.returncode == 0, f"{page.name}: {title} failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    seconds = time.process_time() - start
    assert seconds < TUTORIAL_BUDGET_S, f"{page.name} took {seconds:.0f} CPU s (budget {TUTORIAL_BUDGET_S:.0f} s)"


# ------------------------------------------------------------------------------------- names on pages

NAME = re.compile(r"(?<![\w./])(genbound|gb)((?:\.[A-Za-z_]\w*)+)")


def mentioned_names(text):
    """Dotted genbound names in the code spans and code blocks of a page (``gb.`` only where the page
    imports genbound as gb)."""
    chunks = code_spans(text) + [body for _, _, body in code_blocks(text)]
    alias = "import genbound as gb" in text
    names = set()
    for chunk in chunks:
        for root, dotted in NAME.findall(chunk):
            if root == "gb" and not alias:
                continue
            names.add("genbound" + dotted)
    return names


def resolve(name):
    """Import the longest module prefix of ``name``, then walk the attributes; None if it resolves."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for i, attr in enumerate(parts[cut:], start=cut):
            fields = getattr(obj, "__dataclass_fields__", {})
            if hasattr(obj, attr):
                obj = getattr(obj, attr)
            elif attr in fields or attr in getattr(obj, "__annotations__", {}):
                return None                          # a dataclass field: documented, not a class attribute
            else:
                return f"{'.'.join(parts[:i])} has no attribute {attr!r}"
        return None
    return f"no module {parts[0]!r}"


def test_mentioned_names_parser():
    text = "Use `genbound.nn.SGD` and `gb.x`.\n```python\nimport genbound as gb\ngb.bounds.report(m)\n```\n"
    assert mentioned_names(text) == {"genbound.nn.SGD", "genbound.x", "genbound.bounds.report"}
    assert resolve("genbound.nn.SGD") is None
    assert "no attribute 'nope'" in resolve("genbound.nn.nope")
    assert resolve("genbound.bounds.ReportConfig.delta") is None


PAGES = sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_names_on_page_exist(page):
    missing = {}
    for name in sorted(mentioned_names(page.read_text())):
        problem = resolve(name)
        if problem:
            missing[name] = problem
    assert not missing, f"{page.relative_to(DOCS)} mentions names that do not exist: {missing}"


def test_rst_to_markdown():
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        from griffe_rst import rst_to_markdown
    finally:
        sys.path.remove(str(DOCS / "hooks"))
    text = ("See :func:`~genbound.factor.delta` and :class:`Capacity`, :math:`\\sqrt{N/m}`.\n\n"
            "    .. math::\n\n        N = a\n          + b.\n\n    after\n")
    assert rst_to_markdown(text) == ("See `delta` and `Capacity`, $\\sqrt{N/m}$.\n\n"
                                     "    $$\n    N = a\n      + b.\n    $$\n\n    after\n")
