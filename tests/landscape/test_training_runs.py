"""Tests of the training runs that measure per-batch landscapes (genbound.experiments.landscape): trajectories,
SGD versus GD, the digits study on a small subset."""
import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import genbound as gb  # noqa: E402
from genbound import experiments as E  # noqa: E402
from genbound import landscape as L  # noqa: E402


@pytest.fixture(scope="module")
def small():
    return gb.data.load_digits(seed=0).subset(np.arange(45))


def model0(seed=0):
    return gb.nn.reference_cnn("digits", rank=1, seed=seed)


def test_trajectory_landscape_follows_training(small):
    model, twin = model0(4), model0(4)
    res = E.trajectory_landscape(model, small, epochs=3, batch_size=15, optimizer=gb.nn.SGD(lr=0.05), seed=7,
                                 every=2, config=L.BatchLandscapeConfig(per_sample=False))
    hist = gb.train(twin, small, epochs=3, batch_size=15, optimizer=gb.nn.SGD(lr=0.05), seed=7, progress=False)
    assert np.array_equal(model.get_flat(), twin.get_flat())  # measuring does not disturb training
    assert list(res.summary["epoch"]) == [0, 2, 3]
    assert list(res.summary["step"]) == [0, 6, 9]
    assert len(res.batches) == 3 * 3 and set(res.batches["batch"]) == {0, 1, 2}
    assert np.allclose(res.summary["full_loss"], hist.set_index("epoch").loc[[0, 2, 3], "train_loss"], rtol=1e-12)
    assert {"max_loss", "loss_std", "coherence", "batch_gradient_diversity", "test_error"} <= set(res.summary)
    with pytest.raises(ValueError, match="every"):
        E.trajectory_landscape(model, small, epochs=1, every=0)
    with pytest.raises(TypeError, match="data: "):
        E.trajectory_landscape(model, (small.x_train, small.y_train), epochs=1)


def test_sgd_vs_gd(small):
    model = model0(6)
    w0 = model.get_flat()
    cmp = E.sgd_vs_gd_batch_losses(model, small, batch_size=15, sgd_lr=0.05, sgd_epochs=3, gd_lr=0.05,
                                   config=L.BatchLandscapeConfig(per_sample=False))
    assert np.array_equal(model.get_flat(), w0) and np.array_equal(cmp.weights["init"], w0)
    assert list(cmp.summary["optimizer"]) == ["SGD", "GD"]
    assert set(cmp.table["optimizer"]) == {"SGD", "GD"} and len(cmp.table) == 2 * 3
    sgd, gd = cmp.summary.iloc[0], cmp.summary.iloc[1]
    assert sgd["steps"] == 9
    assert gd["steps"] <= 9
    if gd["steps"] < 9:
        assert gd["train_loss"] <= sgd["train_loss"]
    assert gd["full_loss"] == pytest.approx(gd["train_loss"], rel=1e-10)


def test_sgd_vs_several_gd_learning_rates(small):
    model = model0(7)
    cmp = E.sgd_vs_gd_batch_losses(model, small, batch_size=15, sgd_epochs=2, gd_lr=[0.05, 0.1], gd_max_epochs=4,
                                   config=L.BatchLandscapeConfig(per_sample=False), match_loss=False)
    assert list(cmp.summary["optimizer"]) == ["SGD", "GD lr=0.05", "GD lr=0.1"]
    assert list(cmp.summary["steps"]) == [6, 4, 4]
    assert set(cmp.weights) == {"init", "SGD", "GD lr=0.05", "GD lr=0.1"}
    one = gb.nn.reference_cnn("digits", rank=1, seed=7)
    gb.train(one, small, epochs=4, batch_size=15, optimizer=gb.nn.GD(lr=0.1), seed=0, progress=False)
    assert np.array_equal(one.get_flat(), cmp.weights["GD lr=0.1"])
    with pytest.raises(ValueError, match="gd_lr"):
        E.sgd_vs_gd_batch_losses(model, small, gd_lr=[0.1, -1.0])
    with pytest.raises(TypeError, match="config: "):
        E.sgd_vs_gd_batch_losses(model, small, config=dataclasses.asdict(L.BatchLandscapeConfig()))


def test_batch_landscape_study_small(small, tmp_path):
    config = E.BatchLandscapeStudyConfig(batch_size=15, sgd_epochs=2, gd_lrs=(0.05, 0.2), checkpoints=1,
                                         slice_points=5)
    assert config.names == ["SGD", "GD lr=0.05", "GD lr=0.2"]
    model = model0(8)
    w0 = model.get_flat()
    study = E.batch_landscape_study(model, small, config)
    assert np.array_equal(model.get_flat(), w0)
    assert list(study.summary["optimizer"]) == config.names
    assert len(study.table) == 3 * 3 and len(study.slices) == 3 * 5
    assert {"verdict", "full_top_eig", "top_eig_lanczos", "sharpness_1e-3"} <= set(study.summary)
    # the top eigenvalue of the common-minimum test agrees with a separate Lanczos run on the full data
    assert np.allclose(study.summary["full_top_eig"], study.summary["top_eig_lanczos"], rtol=1e-2)
    # the trajectories end where the compared runs ended
    last = study.trajectory.groupby("optimizer", sort=False).tail(1).set_index("optimizer")
    assert np.allclose(last.loc[config.names, "full_loss"], study.summary["full_loss"], rtol=1e-12)
    study.save(tmp_path)
    loaded = E.BatchLandscapeStudy.load(tmp_path, config)
    assert list(loaded.summary["optimizer"]) == config.names and loaded.table.shape == study.table.shape
    fig = E.plot_batch_landscape_study(loaded, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0 and len(fig.axes) >= 9
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ValueError, match="gd_lr"):
        E.BatchLandscapeStudyConfig(gd_lrs=())
    with pytest.raises(TypeError, match="config: "):
        E.batch_landscape_study(model, small, {"batch_size": 15})
