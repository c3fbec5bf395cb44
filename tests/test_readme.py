"""The README's code runs as written."""
import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_first_session_runs():
    namespace = {}
    exec(_python_blocks()[0], namespace)
    assert 1 - namespace["hist"]["test_error"].iloc[-1] >= 0.9
    assert namespace["hv"].shape == (namespace["model"].n_params,)
    assert sorted(namespace["G"]) == [0, 3]


@pytest.mark.slow
def test_readme_paper_claims_run():
    first, second = _python_blocks()[:2]
    rng = np.random.default_rng(0)
    namespace = {name: rng.normal(size=(4, 1, 3)) for name in ("p", "q", "t", "gp", "gq", "gt")}
    namespace["W"] = rng.normal(size=(4, 3, 3, 3))
    exec(first, namespace)
    exec(second, namespace)
    assert namespace["res"].holds is False
    assert namespace["table"]["vacuous"].dtype == bool
