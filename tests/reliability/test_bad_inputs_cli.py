"""Bad arguments to the ``genbound`` command: a usage message on stderr and exit status 2, never a traceback;
output paths checked before the run, not after it loses the results."""
import pytest

from genbound.cli import main
from tests.reliability import time_limit

def cli_case(argv, fragment):
    return pytest.param(argv, fragment, id=" ".join(argv) or "(no command)")


CASES = [
    cli_case([], "command"),
    cli_case(["bogus"], "bogus"),
    cli_case(["train", "--epochs", "x"], "--epochs"),
    cli_case(["train", "--network", "mnist"], "--network"),
    cli_case(["train", "--lr", "fast"], "--lr"),
    cli_case(["train", "--unknown-option"], "--unknown-option"),
    cli_case(["bounds", "--pac-bayes-samples", "many"], "--pac-bayes-samples"),
    cli_case(["train", "--epochs", "0"], "--epochs"),
    cli_case(["train", "--rank", "abc", "--epochs", "1"], "--rank"),
    cli_case(["train", "--rank", "0", "--epochs", "1"], "--rank"),
    cli_case(["train", "--lr", "-1", "--epochs", "1"], "--lr"),
    cli_case(["train", "--batch-size", "0", "--epochs", "1"], "--batch-size"),
    cli_case(["train", "--momentum", "1.5", "--epochs", "1"], "--momentum"),
    cli_case(["train", "--seed", "-1", "--epochs", "1"], "--seed"),
    cli_case(["bounds", "--n-configs", "0"], "--n-configs"),  # K is counted by the protocol, never typed
    cli_case(["train", "--out", "/dev/null/history", "--epochs", "1", "--quiet"], "--out"),
    cli_case(["derive", "--latex", "/dev/null/folder/identities.tex"], "--latex"),
    cli_case(["bounds", "--csv", "/dev/null/folder/table.csv", "--epochs", "1", "--quiet", "--no-pac-bayes",
              "--no-compression", "--no-data-dependent"], "--csv"),
]


@pytest.mark.parametrize("argv, fragment", CASES)
def test_bad_arguments_exit_2_with_usage(argv, fragment, capsys):
    with time_limit(3), pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and fragment in err, err
