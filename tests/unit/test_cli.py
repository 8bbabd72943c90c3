"""The `warroom` command line: what `run --help` says about the environment, and the usage a
command shows when its subcommand or argument is missing."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.settings import Settings


def _help(capsys: pytest.CaptureFixture, *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_run_help_names_every_environment_variable_settings_reads(
    capsys: pytest.CaptureFixture,
) -> None:
    text = _help(capsys, "run", "--help")
    for field in Settings.model_fields.values():
        assert field.validation_alias.choices[0] in text  # type: ignore[union-attr]
    lines = text.splitlines()
    environment = lines[lines.index("environment variables:") + 1 :]
    # The required ones first, said to be required; the main optional ones with their defaults.
    assert environment[0].split()[0] == "SLACK_BOT_TOKEN" and "(required)" in environment[0]
    assert environment[1].split()[0] == "SLACK_SIGNING_SECRET"
    assert "(required without SLACK_APP_TOKEN)" in environment[1]
    assert "(default redis://localhost:6379/0)" in text
    assert all(len(line) <= 100 for line in lines)


@pytest.mark.parametrize(
    ("argv", "usage", "lists"),
    [
        ([], "usage: warroom [-h] COMMAND", ["run", "protocols", "memory", "report"]),
        (["protocols"], "usage: warroom protocols [-h] COMMAND", ["check"]),
        (["memory"], "usage: warroom memory [-h] COMMAND", ["export", "import"]),
    ],
)
def test_a_missing_subcommand_shows_the_commands_usage(
    capsys: pytest.CaptureFixture, argv: list[str], usage: str, lists: list[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(usage)
    assert all(f"    {name}" in err for name in lists)
    assert "_command" not in err and "required" not in err


def test_a_missing_argument_is_named_as_the_usage_names_it(
    capsys: pytest.CaptureFixture,
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["memory", "export"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: warroom memory export [-h] DIR")
    assert err.rstrip().endswith("the following arguments are required: DIR")
