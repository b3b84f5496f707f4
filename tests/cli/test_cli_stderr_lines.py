"""The command line's warnings start on a line of their own while a progress bar is drawn on the
same stderr (a batch job's log file), and ``rrsis train`` draws bars only on a terminal unless
asked."""

import sys

from tqdm.auto import tqdm

from rrsis.cli.argtypes import stderr_line
from rrsis.cli.predict import _print_warning


def test_a_warning_under_a_bar_in_a_log_file_starts_its_own_line(capsys):
    bar = tqdm(total=6, unit="scene", desc="scenes", file=sys.stderr)  # stderr is not a terminal here
    bar.update(1)
    _print_warning("scene tile_5 (tile_5.tif) failed: ValueError: bad", UserWarning, "f.py", 1)
    bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.split("\n")
    said = [line for line in lines if "warning:" in line]
    assert said == ["rrsis predict: warning: scene tile_5 (tile_5.tif) failed: ValueError: bad"]
    stderr_line("rrsis predict: note: no bar now")
    assert capsys.readouterr().err == "rrsis predict: note: no bar now\n"


def test_train_progress_defaults_to_bars_only_on_a_terminal(monkeypatch):
    import pytest

    from rrsis._config import ConfigError
    from rrsis.engine.recipe import DEFAULTS
    from rrsis.engine.validate import show_progress, validate_config

    assert DEFAULTS["train"]["progress"] == "auto"

    class Stderr:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    for tty in (True, False):
        monkeypatch.setattr(sys, "stderr", Stderr(tty))
        assert show_progress("auto") is tty and show_progress(True) is True and show_progress(False) is False
    monkeypatch.undo()
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in DEFAULTS.items()}
    for value in ("auto", True, False):
        cfg["train"]["progress"] = value
        validate_config(cfg)
    cfg["train"]["progress"] = "yes"
    with pytest.raises(ConfigError, match=r"train.progress='yes': use true .* or \"auto\""):
        validate_config(cfg)


def test_train_quiet_turns_the_bars_off(capsys):
    from rrsis.cli import main

    assert main(["train", "--config", "gl-msin-tiny-synthetic", "--quiet", "--print-config"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["train"]["progress"] is False


def test_a_warning_rrsis_logs_reads_as_the_commands_own(monkeypatch, capsys):
    import logging

    import rrsis.cli.predict as predict
    from rrsis.cli import main

    def fake_run(args):  # what rrsis.hub logs when the Hub cannot be reached
        logging.getLogger("rrsis.hub.files").warning("%s: %s; reading the Hugging Face cache only", "acme/tiny",
                                                     "the Hub could not be reached (ConnectError: refused)")
        return 0

    monkeypatch.setattr(predict, "run", fake_run)
    monkeypatch.setattr(predict, "check_early", lambda args: None)
    monkeypatch.setattr(logging.root, "handlers", [])  # logging not set up, as in a plain rrsis predict
    assert main(["predict", "--model", "acme/tiny", "--image", "x.tif", "--text", "a", "--out", "o"]) == 0
    assert capsys.readouterr().err == ("rrsis predict: warning: acme/tiny: the Hub could not be reached "
                                       "(ConnectError: refused); reading the Hugging Face cache only\n")
    assert not logging.getLogger("rrsis").handlers  # only while the command runs
