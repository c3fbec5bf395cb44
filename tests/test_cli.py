"""The genbound command, run in-process."""
import pandas as pd
import pytest

from genbound.cli import main


def test_train_prints_history_and_writes_csv(tmp_path, capsys):
    assert main(["train", "--epochs", "2", "--quiet", "--rank", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rank-1 CP filters: 2154 parameters, m = 1437" in out
    assert "final test accuracy" in out
    hist = pd.read_csv(tmp_path / "history_digits_1.csv")
    assert list(hist["epoch"]) == [0, 1, 2]


def test_train_rejects_bad_rank(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "1", "--quiet", "--rank", "0"])
    assert info.value.code == 2 and "--rank" in capsys.readouterr().err


def test_unknown_command_exits():
    with pytest.raises(SystemExit):
        main(["nonsense"])


def test_derive_prints_table_and_writes_latex(tmp_path, capsys):
    path = tmp_path / "identities.tex"
    assert main(["derive", "--latex", str(path)]) == 0
    out = capsys.readouterr().out
    assert "eq3_printed" in out and "False" in out
    assert path.read_text().strip()
