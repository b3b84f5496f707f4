"""``--quiet`` prints one line, not the statistics; a stdout closed by its reader (``| head``)
ends the command quietly (128 + SIGPIPE, nothing on stderr), not with "error: Broken pipe"."""

import subprocess
import sys

from rrsis.cli import EXIT_PIPE, main


def test_synth_quiet_prints_one_line_naming_the_statistics_file(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["synth", str(out), "--n-scenes", "2", "--size", "48", "--quiet"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("wrote 2 scenes")
    assert printed[0].endswith(f"statistics in {out}/stats.json") and (out / "stats.json").is_file()
    assert main(["synth", str(tmp_path / "loud"), "--n-scenes", "2", "--size", "48"]) == 0
    assert '"n_scenes": 2' in capsys.readouterr().out  # without --quiet the statistics are printed


def test_a_closed_stdout_ends_quietly(monkeypatch, capsys):
    import rrsis.cli.train as train

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(train, "run", closed)
    assert main(["train", "--config", "gl-msin-tiny-synthetic", "--print-config"]) == EXIT_PIPE
    assert capsys.readouterr().err == ""


def test_print_config_into_a_closed_pipe_says_nothing():
    proc = subprocess.Popen([sys.executable, "-m", "rrsis", "train", "--config", "gl-msin-tiny-synthetic",
                             "--print-config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written, as `| head` after its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_PIPE and "Broken pipe" not in err and "Traceback" not in err
