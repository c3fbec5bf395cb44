"""Checkpoints: the safe format, exact resumption, refusal of anything they cannot trust, kill -9 at random
moments."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

import genbound as gb

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _data(m=96, n_test=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m + n_test, 1, 8, 8))
    y = (x[:, 0, :4].sum(axis=(1, 2)) > 0).astype(int) + 2 * (x[:, 0, :, :4].sum(axis=(1, 2)) > 0)
    return gb.data.Dataset(x[:m], y[:m], x[m:], y[m:], classes=10)


def _model(seed=0, rank=1):
    layers = [gb.nn.CPConv2d(1, 4, 3, rank=rank, padding=1) if rank else gb.nn.Conv2d(1, 4, 3, padding=1),
              gb.nn.ReLU(), gb.nn.MaxPool2d(2), gb.nn.Flatten(), gb.nn.Dense(64, 10)]
    return gb.nn.Sequential(layers, seed=seed, input_shape=(1, 8, 8))


def _run(epochs, checkpoint=None, model_seed=0, optimizer=None, data=None, **kwargs):
    model = _model(model_seed)
    optimizer = gb.nn.SGD(lr=0.05, momentum=0.9) if optimizer is None else optimizer
    kwargs = dict(dict(batch_size=16, seed=1, progress=False), **kwargs)
    hist = gb.train(model, _data() if data is None else data, epochs=epochs, optimizer=optimizer,
                    checkpoint=checkpoint, **kwargs)
    return model, hist


@pytest.mark.parametrize("make_opt", [lambda: gb.nn.SGD(lr=0.05, momentum=0.9),
                                      lambda: gb.nn.Adam(lr=0.01),
                                      lambda: gb.nn.SGD(lr=0.05, cp_update="project")])
def test_resume_is_bit_identical(tmp_path, make_opt):
    full_model, full = _run(5, optimizer=make_opt(), eval_every=4)
    ckpt = tmp_path / "run.ckpt"
    _run(2, ckpt, optimizer=make_opt(), eval_every=4)
    _run(3, ckpt, model_seed=7, optimizer=make_opt(), eval_every=4)  # fresh model and optimizer each time
    model, resumed = _run(5, ckpt, model_seed=9, optimizer=make_opt(), eval_every=4)
    pd.testing.assert_frame_equal(full, resumed, check_exact=True)
    assert np.array_equal(full_model.get_flat(), model.get_flat())
    assert not resumed["diverged"].any()
    # asking for the epochs already done returns the history without training
    model, again = _run(5, ckpt, model_seed=11, optimizer=make_opt(), eval_every=4)
    pd.testing.assert_frame_equal(full, again, check_exact=True)
    assert np.array_equal(full_model.get_flat(), model.get_flat())


def test_checkpoint_is_the_safe_format_with_the_run_state(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    model, hist = _run(2, ckpt)
    with np.load(ckpt, allow_pickle=False) as npz:
        files = set(npz.files)
    assert files >= {"header", *(f"params/{k}" for k in model.params)}
    assert any(f.startswith("optimizer/buffers/") for f in files)  # momentum buffers
    header = gb.nn.read_header(ckpt)
    assert header["format"] == "genbound.checkpoint" and header["progress"] == {"epoch": 2, "step": 12}
    assert header["epochs"] == 2 and header["provenance"]["numpy"] == np.__version__
    assert header["rng"]["bit_generator"] == "PCG64"
    pd.testing.assert_frame_equal(pd.DataFrame(header["history"]), hist, check_exact=True)
    fp = header["fingerprint"]
    assert fp["batch_size"] == 16 and fp["seed"] == 1 and fp["eval_every"] is None
    assert fp["optimizer"] == {"class": "SGD", "settings": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0,
                                                            "cp_update": None, "project_iters": 5}}
    assert fp["data"]["x_train"]["shape"] == [96, 1, 8, 8] and len(fp["data"]["y_test"]["sha256"]) == 64
    assert fp["model"]["architecture"] == model.architecture()
    # the model inside is the trained model
    assert np.array_equal(gb.nn.load(ckpt).get_flat(), model.get_flat())


@pytest.mark.parametrize("change,match", [
    (dict(data=_data(seed=1)), r"data\.x_train\.sha256"),
    (dict(data=_data(m=80)), r"data\.x_train\.shape"),
    (dict(optimizer=gb.nn.SGD(lr=0.1, momentum=0.9)), r"optimizer\.settings\.lr is 0\.05 there and 0\.1"),
    (dict(optimizer=gb.nn.SGD(lr=0.05, momentum=0.5)), r"optimizer\.settings\.momentum"),
    (dict(optimizer=gb.nn.Adam(lr=0.05)), r"optimizer\.class is 'SGD' there and 'Adam'"),
    (dict(batch_size=32), r"batch_size is 16 there and 32"),
    (dict(seed=2), r"seed is 1 there and 2"),
    (dict(eval_every=3), r"eval_every is None there and 3"),
])
def test_resume_of_another_run_is_refused(tmp_path, change, match):
    ckpt = tmp_path / "run.ckpt"
    _run(2, ckpt)
    with pytest.raises(ValueError, match=rf"checkpoint: .*run\.ckpt was written by another run: {match}"):
        _run(3, ckpt, **change)


def test_resume_with_another_architecture_or_fewer_epochs_is_refused(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    _run(3, ckpt)
    data = _data()
    with pytest.raises(ValueError, match=r"model\.architecture\[0\]\.config\.rank is 1 there and 2"):
        gb.train(_model(rank=2), data, epochs=4, batch_size=16, optimizer=gb.nn.SGD(lr=0.05, momentum=0.9), seed=1,
                 progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"epochs: the checkpoint .*run\.ckpt has already trained 3 epochs, "
                                         r"this call asks for 2"):
        _run(2, ckpt)


def test_edited_or_truncated_checkpoint_is_refused_by_name(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    _run(2, ckpt)
    raw = ckpt.read_bytes()
    with np.load(ckpt, allow_pickle=False) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    edits = {
        "params/0.p": lambda a: a["params/0.p"].__setitem__((1, 0, 0), a["params/0.p"][1, 0, 0] + 1e-6),
        "optimizer/buffers/4.weight": lambda a: a["optimizer/buffers/4.weight"].__setitem__((0, 0), 0.0),
    }
    for key, edit in edits.items():
        edited = {k: v.copy() for k, v in arrays.items()}
        edit(edited)
        with open(ckpt, "wb") as fh:
            np.savez(fh, **edited)
        with pytest.raises(ValueError, match=rf"run\.ckpt: {key}: sha256 mismatch"):
            _run(3, ckpt)
    # the header (history, progress) edited by hand
    header = json.loads(arrays["header"].tobytes().decode())
    header["progress"]["epoch"] = 1
    with open(ckpt, "wb") as fh:
        np.savez(fh, **dict(arrays, header=np.frombuffer(json.dumps(header).encode(), np.uint8)))
    with pytest.raises(ValueError, match=r"run\.ckpt: header_sha256"):
        _run(3, ckpt)
    for cut in (len(raw) - 100, len(raw) // 3):
        ckpt.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"run\.ckpt: not a complete genbound file \(truncated"):
            _run(3, ckpt)
    ckpt.write_bytes(raw)
    _run(3, ckpt)  # the untouched file still resumes


def test_stale_temporaries_removed_and_folder_checked_first(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    stale = folder / ".tmp-run.ckpt.abc123"
    stale.write_bytes(b"half a checkpoint")
    other = folder / ".tmp-other.ckpt.xyz"
    other.write_bytes(b"someone else's")

    calls = []
    _run(1, folder / "run.ckpt", callback=lambda m, row: calls.append(row["epoch"]))
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-other.ckpt.xyz", "run.ckpt"]
    # a checkpoint path that cannot be written is refused before any work is done
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    calls.clear()
    with pytest.raises(ValueError, match="checkpoint: cannot write in folder"):
        _run(1, blocker / "run.ckpt", callback=lambda m, row: calls.append(row["epoch"]))
    assert calls == []
    with pytest.raises(ValueError, match="checkpoint: expected a file path, got the folder"):
        _run(1, folder)
    with pytest.raises(TypeError, match="checkpoint: expected a file path"):
        _run(1, 3)


def test_old_pickled_checkpoints_are_refused(tmp_path):
    import pickle

    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(pickle.dumps({"flat": np.zeros(3), "epoch": 1}))
    with pytest.raises(ValueError, match=r"run\.ckpt: not a genbound file .*pickled files are never loaded"):
        _run(2, ckpt)


# -- kill -9 at random moments ------------------------------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import genbound as gb
    sys.path.insert(0, sys.argv[3])
    from test_checkpoint import _data, _model
    hist = gb.train(_model(0), _data(), epochs=int(sys.argv[2]), batch_size=16,
                    optimizer=gb.nn.SGD(lr=0.05, momentum=0.9), seed=1, progress=False, checkpoint=sys.argv[1])
    print("HISTORY" + json.dumps(hist.to_dict("records")))
""")


def _stamp(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _kill_and_resume(tmp_path, kills, epochs):
    rng = np.random.default_rng(kills)
    script = tmp_path / "run_train.py"
    script.write_text(SCRIPT)
    ckpt = tmp_path / "ck" / "run.ckpt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, str(script), str(ckpt), str(epochs), str(pathlib.Path(__file__).parent)]
    killed = 0
    while killed < kills:
        before = _stamp(ckpt)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        deadline = time.monotonic() + 120
        while _stamp(ckpt) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # wait for this process to write at least one new checkpoint
        time.sleep(rng.uniform(0.0, 0.05))  # then kill it at a random moment
        if proc.poll() is not None:
            raise AssertionError(f"the run finished before kill {killed + 1}: raise epochs\n"
                                 f"{proc.stderr.read().decode()[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        killed += 1
    done = gb.nn.read_header(ckpt)["progress"]["epoch"]
    assert 0 < done < epochs
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.split("HISTORY", 1)[1])
    # an uninterrupted run, here
    model, hist = _run(epochs)
    resumed = pd.DataFrame(rows, columns=hist.columns)
    pd.testing.assert_frame_equal(hist, resumed, check_exact=True)
    assert np.array_equal(gb.nn.load(ckpt).get_flat(), model.get_flat())
    pd.testing.assert_frame_equal(pd.DataFrame(gb.nn.read_header(ckpt)["history"]), hist, check_exact=True)
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["run.ckpt"]  # no litter


def test_kill_9_twice_then_resume_bit_identical(tmp_path):
    _kill_and_resume(tmp_path, kills=2, epochs=60)


@pytest.mark.slow
def test_kill_9_five_times_then_resume_bit_identical(tmp_path):
    _kill_and_resume(tmp_path, kills=5, epochs=150)


# -- optimizer state ----------------------------------------------------------------------------------------

def test_optimizer_state_round_trip_continues_identically():
    data = _data()
    x, y = data.x_train[:16], data.y_train[:16]
    for make in (lambda: gb.nn.SGD(lr=0.05, momentum=0.9, weight_decay=1e-3), lambda: gb.nn.Adam(lr=0.01)):
        a_model, a_opt = _model(), make()
        for _ in range(3):
            a_opt.step(a_model, a_model.loss_and_grad(x, y)[1])
        b_model, b_opt = a_model.copy(), make().load_state_dict(a_opt.state_dict())
        for model, opt in ((a_model, a_opt), (b_model, b_opt)):
            opt.step(model, model.loss_and_grad(x, y)[1])
        assert np.array_equal(a_model.get_flat(), b_model.get_flat())


def test_optimizer_state_of_another_optimizer_is_refused():
    state = gb.nn.SGD(lr=0.05, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match=r"state\['settings'\]\['momentum'\]: the state was saved with 0\.9"):
        gb.nn.SGD(lr=0.05, momentum=0.5).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state\['class'\]: expected Adam, got 'SGD'"):
        gb.nn.Adam().load_state_dict(state)
    with pytest.raises(ValueError, match=r"state: missing field 'buffers'"):
        gb.nn.SGD(lr=0.05, momentum=0.9).load_state_dict({"class": "SGD", "settings": state["settings"]})
    state["buffers"] = {"0.p": np.array([np.nan])}
    with pytest.raises(ValueError, match=r"state\['buffers'\]\['0\.p'\]: expected finite values"):
        gb.nn.SGD(lr=0.05, momentum=0.9).load_state_dict(state)
