"""The ``bitspike`` command's one error path: environment errors become one line, exit 2."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from bitspike import cli

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
    assert cli.os_error_message(exc) == expected


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
