"""The ``bitspike`` command's one error path: environment errors become one line, exit 2."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from bitspike import cli
from sw.options import os_error_message

ROOT = Path(__file__).resolve().parent.parent


def _random(out: Path) -> list[str]:
    return ["random", "-o", str(out), "--sizes", "6,4,3", "--seed", "1"]


@pytest.mark.parametrize("exc, expected", [
    (PermissionError(errno.EACCES, "Permission denied", "/x/manifest.json"),
     "/x/manifest.json: Permission denied"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"),
     "/a: /b: Invalid cross-device link"),
])
def test_os_error_message(exc, expected):
    assert os_error_message(exc) == expected


def test_os_errors_of_a_command_are_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    """Any command's OSError reaches the user as ``error: <path>: <reason>``, exit 2."""
    from sw import cli_artifact

    def refuse(args):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out"))

    monkeypatch.setattr(cli_artifact.Random, "run", staticmethod(refuse))
    assert cli.main(_random(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'out'}: Read-only file system\n"


def test_output_under_a_file_is_one_line_and_exit_2(tmp_path):
    """A real OSError (a file where the output's parent folder should be), end to end."""
    (tmp_path / "file").write_text("not a folder")
    proc = subprocess.run([sys.executable, "-m", "bitspike", *_random(tmp_path / "file" / "net")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert str(tmp_path / "file") in proc.stderr


def test_closed_pipe_is_quiet(tmp_path):
    """``bitspike info A | head -1``: the reader closes the pipe; no traceback."""
    assert cli.main(_random(tmp_path / "net")) == 0
    with subprocess.Popen([sys.executable, "-m", "bitspike", "info", str(tmp_path / "net")],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()  # before it writes a byte
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 141


@pytest.mark.parametrize("command, module", [("simulate", "sim.main"),
                                             ("bitstream", "bitstreams.flow")])
def test_every_job_is_a_subcommand(command, module, monkeypatch):
    """``bitspike simulate``/``bitstream`` run the same program as ``python -m`` with the
    same options, and return its exit status."""
    import importlib

    seen = []
    monkeypatch.setattr(importlib.import_module(module), "main",
                        lambda argv: seen.append(argv) or 7)
    assert cli.main([command, "--samples", "3"]) == 7
    assert seen == [["--samples", "3"]]


def test_simulate_subcommand_help_is_the_main_jobs(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["simulate", "--help"])
    assert exc.value.code == 0
    assert "--simulator" in capsys.readouterr().out


# --- every command's options: help and default, refused at once with one line ------------------

def _parsers():
    """Every subcommand parser of ours, as ``bitspike`` builds it (``run`` is the host client's,
    tested with it; the whole jobs parse their own options)."""
    import argparse

    from sw.options import HelpFormatter

    for name, (target, _) in cli.COMMANDS.items():
        if ":" not in target or name == "run":
            continue
        parser = argparse.ArgumentParser(prog=f"bitspike {name}", formatter_class=HelpFormatter)
        cli._load(target).configure(parser)
        yield name, parser


def test_every_option_has_a_help_text_and_says_its_default():
    import argparse

    missing = []
    for name, parser in _parsers():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = formatter._get_help_string(action) if action.help else ""
            flag = isinstance(action, argparse._StoreTrueAction)
            positional_required = not action.option_strings and action.nargs is None
            if not text or not (flag or positional_required or action.required
                                or "default" in text.lower()):
                missing.append(f"{name} {action.dest}: {text!r}")
    assert not missing, "\n".join(missing)


def _one_error_line(err: str, *names: str) -> str:
    """The one line of ``err`` that says ``error:``; it names every one of ``names``."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for n in names:
        assert n in lines[0], err
    return lines[0]


def _refused(argv, capsys) -> str:
    """``argv`` is refused with exit 2, by argparse (SystemExit) or by the command."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, option", [
    (["golden", "ART", "--limit", "0"], "--limit"),
    (["golden", "ART", "--limit", "-5"], "--limit"),
    (["datasets", "digits", "--limit", "0"], "--limit"),
    (["datasets", "digits", "--limit", "-1"], "--limit"),
    (["train", "--limit", "0"], "--limit"),
    (["train", "--epochs", "-1"], "--epochs"),
    (["train", "--threads", "0"], "--threads"),
    (["train", "-T", "2000"], "--time-steps"),
    (["datasets", "digits-events", "--time-steps", "100000"], "--time-steps"),
    (["datasets", "digits-events", "--time-steps", "0"], "--time-steps"),
    (["random", "-o", "X", "--sizes", "6,x"], "--sizes"),
    (["random", "-o", "X", "--sizes", "6,0,3"], "--sizes"),
    (["random", "-o", "X", "--time-steps", "0"], "--time-steps"),
    (["random", "-o", "X", "--time-steps", "-2"], "--time-steps"),
    (["random", "-o", "X", "--time-steps", "2000"], "--time-steps"),
    (["random", "-o", "X", "--input-bits", "0"], "--input-bits"),
    (["random", "-o", "X", "--input-bits", "17"], "--input-bits"),
    (["random", "-o", "X", "--seed", "-1"], "--seed"),
    (["bram", "ART", "--simd", "8,x", "--pe", "1", "-o", "X"], "--simd"),
    (["verilog", "ART", "--popcount-stages", "9", "-o", "X"], "--popcount-stages"),
    (["export", "RUN", "-o", "X", "--scale-bits", "31"], "--scale-bits"),
])
def test_bad_option_values_are_one_line_naming_the_option(argv, option, capsys):
    # argparse refuses them before the command runs (ART/RUN/X need not exist)
    _one_error_line(_refused(argv, capsys), option)


def test_random_sizes_needs_inputs_and_classes(capsys, tmp_path):
    _one_error_line(_refused(["random", "-o", str(tmp_path / "n"), "--sizes", "6"], capsys),
                    "--sizes")
    assert not (tmp_path / "n").exists()


def test_random_time_steps_random_is_explicit(tmp_path, capsys):
    """``--time-steps random`` draws T from the seed (the same T for the same seed); a number
    is that T (0 is refused above, not a hidden "random")."""
    from sw.artifact import load_artifact

    drawn = []
    for k in range(2):
        out = tmp_path / f"r{k}"
        assert cli.main(["random", "-o", str(out), "--sizes", "6,4,3", "--seed", "5",
                         "--time-steps", "random"]) == 0
        drawn.append(load_artifact(out).time_steps)
    assert drawn[0] == drawn[1] and drawn[0] in (1, 2, 3, 4, 5, 8, 16)
    assert cli.main(["random", "-o", str(tmp_path / "t7"), "--sizes", "6,4,3",
                     "--time-steps", "7"]) == 0
    assert load_artifact(tmp_path / "t7").time_steps == 7


def _artifact(tmp_path) -> Path:
    out = tmp_path / "net"
    assert cli.main(_random(out)) == 0
    return out


@pytest.mark.parametrize("command", ["random", "bram", "verilog", "plot", "train", "export"])
def test_output_in_the_way_is_refused_before_the_work(command, tmp_path, capsys):
    """An output whose parent is a file: one line naming that file, exit 2, before any work
    (export: before the checkpoint is even read, so a missing one is not what is reported;
    train: before the data are loaded)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = str(blocker / "out")
    argv = {
        "random": lambda: _random(blocker / "out"),
        "bram": lambda: ["bram", str(_artifact(tmp_path)), "--folding", "2x1", "-o", out],
        "verilog": lambda: ["verilog", str(_artifact(tmp_path)), "-o", out],
        "plot": lambda: ["plot", str(tmp_path / "run"), "-o", out],
        "train": lambda: ["train", "--epochs", "1", "-o", out, "--quiet"],
        "export": lambda: ["export", str(tmp_path / "no-run"), "-o", out],
    }[command]()
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"error: {blocker}: Not a directory\n"


def test_check_output_dir_names_a_read_only_location(monkeypatch, tmp_path):
    """A read-only file system and a folder without write permission say so (root, as in
    this project's containers, bypasses permission bits, so os.access is patched)."""
    import os

    from sw.options import check_output_dir

    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="Permission denied"):
        check_output_dir(tmp_path / "a" / "b")

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(OSError, match="Read-only file system") as info:
        check_output_dir(tmp_path / "a")
    assert info.value.filename == str(tmp_path)
    assert os_error_message(info.value) == f"{tmp_path}: Read-only file system"


def test_python_m_entry_points_share_the_error_path(tmp_path):
    """``python -m sim.main`` (the main job run directly) reports an environment error as
    ``bitspike`` does: one line naming the path, exit 2."""
    assert cli.main(["random", "-o", str(tmp_path / "net"), "--sizes", "64,6,10", "--seed",
                     "1"]) == 0
    (tmp_path / "file").write_text("not a folder")
    proc = subprocess.run([sys.executable, "-m", "sim.main", "--artifact", str(tmp_path / "net"),
                           "--samples", "1", "--build-dir", str(tmp_path / "file" / "b")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(tmp_path / "file") in last, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
