"""Each experiment's default setting depends on the data: the digits full run, the quick run (whatever the data)
and the full run on 28x28 images (``mnist``); the digits and quick settings, and their cells, stay as they were."""
import inspect

import numpy as np
import pytest

from genbound.bounds import ReportConfig
from genbound.experiments import batch_claims, cells, compression, randomization, rank1_update
from genbound.experiments.batch_claims import BatchLandscapeExperimentConfig, EscapeConfig
from genbound.experiments.compression import CompressionConfig
from genbound.experiments.randomization import CONDITIONS, RandomizationConfig
from genbound.experiments.rank1_update import Rank1UpdateConfig

#: (config class, grid_cells, cell function) of every experiment.
EXPERIMENTS = [
    (CompressionConfig, compression.grid_cells, compression.compression_cell),
    (RandomizationConfig, randomization.grid_cells, randomization.randomization_cell),
    (BatchLandscapeExperimentConfig, batch_claims.batch_landscape_grid_cells, batch_claims.batch_landscape_cell),
    (EscapeConfig, batch_claims.escape_grid_cells, batch_claims.escape_cell),
    (Rank1UpdateConfig, rank1_update.grid_cells, rank1_update.rank1_update_cell),
]


@pytest.mark.parametrize("cls, grid_cells, fn", EXPERIMENTS)
def test_for_data_picks_the_setting_by_data(cls, grid_cells, fn):
    assert cls.for_data("digits") == cls()
    assert cls.for_data("digits", quick=True) == cls.quick() == cls.for_data("mnist-subset", quick=True)
    assert cls.for_data("mnist-subset") == cls.mnist() != cls()
    assert cells.check_config(None, cls, False, "mnist-subset") == cls.mnist()
    assert cells.check_config(None, cls, True, "mnist-subset") == cls.quick()
    given = cls(n_train=64)
    assert cells.check_config(given, cls, True, "mnist-subset") is given


@pytest.mark.parametrize("cls, grid_cells, fn", EXPERIMENTS)
def test_digits_and_quick_cells_are_unchanged(cls, grid_cells, fn):
    """The default cells on digits and the quick cells are those of ``cls()`` and ``cls.quick()``, and hold every
    parameter the cell functions had before the optional ones were added (so their stored keys still match)."""
    for quick, cfg in ((False, cls()), (True, cls.quick())):
        default, _ = grid_cells("digits", {"seed": [0, 1]}, quick=quick)
        explicit, _ = grid_cells("digits", {"seed": [0, 1]}, config=cfg)
        assert default == explicit
        optional = {n for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}
        required = set(inspect.signature(fn).parameters) - optional
        assert all(set(c) == required for c in default)


def test_the_digits_and_quick_settings_are_those_of_the_paper_runs():
    """The values the digits full run and the quick run have always used."""
    c = CompressionConfig()
    assert (c.ranks, c.widths, c.epochs, c.report.hessian, c.report.hessian_k, c.report.max_iter,
            c.report.n_samples, c.hessian_examples) == ((None, 1, 2, 4), (0.5, 1.0), 40, True, 20, 400, 150, None)
    q = CompressionConfig.quick()
    assert (q.ranks, q.widths, q.epochs, q.report) == ((None, 1), (1.0,), 30,
                                                       ReportConfig(hessian=False, n_samples=20, max_iter=100))
    r = RandomizationConfig()
    assert (r.max_epochs, r.n_train, r.conditions, r.report) == (150, None, CONDITIONS, ReportConfig())
    assert RandomizationConfig.quick() == RandomizationConfig(max_epochs=30, n_train=500,
                                                              report=ReportConfig(pac_bayes=False))
    b = BatchLandscapeExperimentConfig()
    assert (b.epochs, b.checkpoints, b.hessian_batches, b.full_eig_examples, b.per_sample) == (30, 6, None, None, True)
    e = EscapeConfig()
    assert (e.ranks, e.n_train, e.epochs, e.gd_max_steps, e.hessian_batches) == ((None, 1), None, 30, 300, None)
    assert (Rank1UpdateConfig().epochs, Rank1UpdateConfig.quick().epochs) == (30, 10)


def test_the_28x28_full_run_reductions():
    """The full run on 28x28 images: every reduction is in the config (and so in the report's configuration)."""
    c = CompressionConfig.mnist()
    assert (c.ranks, c.widths, c.n_train) == (CompressionConfig().ranks, CompressionConfig().widths, None)
    assert (c.epochs, c.hessian_examples, c.report.hessian_k, c.report.max_iter, c.report.n_samples) == (8, 500, 20,
                                                                                                        200, 50)
    r = RandomizationConfig.mnist()
    assert (r.conditions, r.ranks, r.n_train, r.max_epochs, r.report.pac_bayes) == (CONDITIONS, (None, 1), 1000,
                                                                                   100, False)
    b = BatchLandscapeExperimentConfig.mnist()
    assert (b.n_train, b.epochs, b.checkpoints, b.hessian_batches, b.full_eig_examples) == (None, 10, 3, 4, 1000)
    e = EscapeConfig.mnist()
    assert (e.ranks, e.n_train, e.epochs, e.bad_epochs, e.gd_max_steps, e.hessian_batches) == ((1,), 1000, 20, 20,
                                                                                                60, 4)
    assert (Rank1UpdateConfig.mnist().epochs, Rank1UpdateConfig.mnist().n_train) == (10, None)


@pytest.fixture
def tiny_28x28(monkeypatch):
    """``cell_data`` returns 4 blank 28x28 images (the cells' data fingerprint and the input shape are all the
    cell builders read), so that building MNIST cells does not load the MNIST subset."""
    from genbound.data import Dataset

    def fake(data, data_seed, scaling, n_train=None, n_test=None):
        x = np.zeros((4, 1, 28, 28))
        return Dataset(x, np.arange(4), x, np.arange(4), classes=10)

    monkeypatch.setattr(cells, "cell_data", fake)
    monkeypatch.setattr(randomization, "cell_data", fake)


def test_mnist_subset_cells_carry_its_own_defaults(tiny_28x28):
    cs, _ = compression.grid_cells("mnist-subset", {"seed": [0]})
    assert (cs[0]["network"], cs[0]["epochs"], cs[0]["hessian_examples"]) == ("mnist_gap", 8, 500)
    assert cs[0]["report"]["n_samples"] == 50
    cs, _ = randomization.grid_cells("mnist-subset", {"seed": [0]})
    assert (cs[0]["network"], cs[0]["n_train"], cs[0]["max_epochs"]) == ("mnist", 1000, 100)
    cs, _ = batch_claims.batch_landscape_grid_cells("mnist-subset", {"seed": [0]})
    assert (cs[0]["epochs"], cs[0]["hessian_batches"], cs[0]["full_eig_examples"]) == (10, 4, 1000)
    cs, _ = batch_claims.escape_grid_cells("mnist-subset", {"seed": [0]})
    assert (cs[0]["rank"], cs[0]["n_train"], cs[0]["gd_max_steps"]) == (1, 1000, 60)
    cs, _ = rank1_update.grid_cells("mnist-subset", {"seed": [0]})
    assert (cs[0]["network"], cs[0]["epochs"]) == ("mnist_gap", 10)
    # quick stays quick on any data
    cs, _ = compression.grid_cells("mnist-subset", {"seed": [0]}, quick=True)
    assert cs[0]["epochs"] == 30 and "hessian_examples" not in cs[0]


def test_setting_label():
    assert cells.setting_label(None, False, "digits") == "full (digits)"
    assert cells.setting_label(None, False, "mnist-subset") == "full (28x28 images)"
    assert cells.setting_label(None, True, "mnist-subset") == "quick"
    assert cells.setting_label(CompressionConfig(), False, "digits") == "given"


# ----------------------------------------------------------------------- optional cell parameters


def _cell(a, b, c=None, d=3):
    return {}


def test_optional_parameters_at_their_default_stay_out_of_the_cell():
    cfg = Rank1UpdateConfig()  # any config: _cell's parameters come from ``fixed`` here
    assert cells.config_cell(_cell, cfg, a=1, b=2) == {"a": 1, "b": 2}
    assert cells.config_cell(_cell, cfg, a=1, b=2, c=None, d=3) == {"a": 1, "b": 2}
    assert cells.config_cell(_cell, cfg, a=1, b=2, c=5, d=3.0) == {"a": 1, "b": 2, "c": 5, "d": 3.0}
    with pytest.raises(TypeError, match="'b'"):
        cells.config_cell(_cell, cfg, a=1)


def test_a_grid_may_set_an_optional_parameter():
    grid = {"full_eig_examples": [None, 100]}
    cs, _ = batch_claims.batch_landscape_grid_cells("digits", grid, quick=True)
    assert "full_eig_examples" not in cs[0] and cs[1]["full_eig_examples"] == 100
    assert {k: v for k, v in cs[1].items() if k != "full_eig_examples"} == cs[0]
    with pytest.raises(ValueError, match="full_eig_examples"):
        batch_claims.batch_landscape_grid_cells("digits", {"depth": [1]}, quick=True)


def test_example_sample():
    s = cells.example_sample(4000, 500, 0)
    assert s.shape == (500,) and np.all(np.diff(s) > 0) and s.max() < 4000
    assert np.array_equal(s, cells.example_sample(4000, 500, 0))
    assert not np.array_equal(s, cells.example_sample(4000, 500, 1))
    assert cells.example_sample(400, 500, 0) is None and cells.example_sample(400, None, 0) is None
