"""An unknown flag after a subcommand is reported by that subcommand, with its usage."""

from __future__ import annotations

import pytest

from rrsis.cli import EXIT_USAGE, main

# Each subcommand with just enough arguments to get past its required ones.
ARGV = {
    "models": ["models"],
    "convert": ["convert", "--arch", "lavt", "ckpt.pth", "out"],
    "synth": ["synth", "out"],
    "evaluate": ["evaluate", "--model", "m", "--data", "d", "--dataset", "folder"],
    "predict": ["predict", "--model", "m", "--image", "a.png", "--text", "t", "--out", "o"],
    "demo": ["demo"],
    "app": ["app"],
}


@pytest.mark.parametrize("command", sorted(ARGV))
def test_unknown_flag_names_the_subcommand(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*ARGV[command], "--no-such-flag=3"])
    assert info.value.code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"usage: rrsis {command} ")
    assert err[-1] == f"rrsis {command}: error: unrecognized arguments: --no-such-flag=3"


def test_unknown_flag_before_any_subcommand_is_the_top_level_parsers(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--no-such-flag"])
    assert info.value.code == EXIT_USAGE
    assert capsys.readouterr().err.strip().splitlines()[-1] == "rrsis: error: unrecognized arguments: --no-such-flag"


def test_train_keeps_unknown_flags_as_recipe_overrides(capsys):
    # rrsis train reads "--data.root x" as a recipe override, so its unknown words are not refused
    # by the parser: the recipe lookup comes first.
    assert main(["train", "--config", "no-such-recipe", "--data.root", "x"]) == EXIT_USAGE
    assert "unknown config 'no-such-recipe'" in capsys.readouterr().err
