"""Artifact writes under concurrency and SIGKILL (issue 11, item 5).

Writers are killed at random instants while they overwrite an artifact in a loop; after every
kill the path must hold a loadable artifact that is exactly the old or the new one, and the
next writer must clean up what the killed one left. A fork server (one interpreter that has
imported everything) forks each writer, so a kill costs milliseconds, not an interpreter start.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import sw.artifact as artifact_module
from sw.artifact import (
    ArtifactError,
    ArtifactLockedError,
    artifact_lock,
    load_artifact,
    manifest_digest,
    write_artifact,
)
from sw.randnet import random_artifact

SIZES = [12, 7, 3]

# Commands on stdin, one answer line each on stdout:
#   loop PATH EXCHANGE   fork a writer that overwrites PATH with artifacts A, B, A, ... forever
#                        (EXCHANGE 0: the two-rename fallback; 2: the fallback stopping between
#                        its renames after a marker file PATH.in-window); answers its pid
#   reap PID             wait for it; answers its wait status
#   race PATH            fork two writers of PATH (a new path, no overwrite) released at once;
#                        answers both exit codes (0 wrote, 3 lock error, 4 exists, 1 other)
SERVER = textwrap.dedent("""
    import os, sys, time
    import sw.artifact as am
    from sw.randnet import random_artifact
    arts = [random_artifact(s, sizes=@SIZES@) for s in (1, 2)]

    def child(path, exchange):
        if exchange != 1:
            am._exchange = lambda a, b: False
            real = os.rename
            # 0: widen the fallback's moment between its renames (4 ms), to hit it at random;
            # 2: stop in it, say so with a marker file, and wait to be killed there.
            pause = 0.004 if exchange == 0 else 60.0

            def slow(a, b):
                real(a, b)
                if ".old-" in str(b):
                    if exchange == 2:
                        open(path + ".in-window", "w").close()
                    time.sleep(pause)
            os.rename = slow
        i = 1
        while True:
            am.write_artifact(arts[i % 2], path, overwrite=True)
            i += 1

    def racer(path, go):
        os.read(go, 1)
        try:
            am.write_artifact(arts[0], path)
        except am.ArtifactLockedError:
            os._exit(3)
        except FileExistsError:
            os._exit(4)
        except BaseException:
            os._exit(1)
        os._exit(0)

    print("ready", flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "loop":
            pid = os.fork()
            if pid == 0:
                try:
                    child(args[0], int(args[1]))
                finally:
                    os._exit(1)
            print(pid, flush=True)
        elif cmd == "reap":
            print(os.waitpid(int(args[0]), 0)[1], flush=True)
        elif cmd == "race":
            r, w = os.pipe()
            pids = []
            for _ in range(2):
                pid = os.fork()
                if pid == 0:
                    os.close(w)
                    racer(args[0], r)
                pids.append(pid)
            os.close(r)
            time.sleep(0.01)
            os.write(w, b"gg")
            os.close(w)
            codes = sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids)
            print(*codes, flush=True)
""").replace("@SIZES@", repr(SIZES))


class ForkServer:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture
def server():
    s = ForkServer()
    yield s
    s.close()


def _snapshot(path: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def _references(tmp_path: Path) -> list[dict]:
    """The files of artifacts A and B as the fork server's writers write them."""
    return [_snapshot(write_artifact(random_artifact(s, sizes=SIZES), tmp_path / f"ref{s}"))
            for s in (1, 2)]


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def _kill_loop(server, tmp_path, kills, rng, exchange=True):
    """Kill ``kills`` looping writers at random instants; count what each kill left."""
    refs = _references(tmp_path)
    path = tmp_path / "net"
    write_artifact(random_artifact(1, sizes=SIZES), path)
    counts = {"old or new": 0, "neither": 0, "recovered by the next writer": 0,
              "temporary or backup left": 0, "lock file left": 0}
    neither = []
    for k in range(kills):
        pid = int(server.ask(f"loop {path} {int(exchange)}"))
        # a write takes a few ms here: the delays cover every phase of several writes
        time.sleep(rng.uniform(0, 0.02))
        os.kill(pid, signal.SIGKILL)
        status = int(server.ask(f"reap {pid}"))
        assert os.WIFSIGNALED(status), f"kill {k}: the writer ended by itself ({status})"
        left = _leftovers(path)
        counts["lock file left"] += ".net.lock" in left
        counts["temporary or backup left"] += any(n != ".net.lock" for n in left)
        state = _snapshot(path) if path.is_dir() else None
        if state in refs:
            load_artifact(path)
            counts["old or new"] += 1
        elif exchange:
            counts["neither"] += 1
            neither.append((k, sorted(state or ()), _leftovers(path)))
        else:
            # the fallback's documented moment: path missing, the old one at .net.old-*
            assert state is None and len(_leftovers(path)) >= 1, (k, _leftovers(path))
        # the next writer takes over whatever the kill left
        write_artifact(random_artifact(1, sizes=SIZES), path, overwrite=True)
        if state is None:
            counts["recovered by the next writer"] += 1
        assert _leftovers(path) == [], (k, _leftovers(path))
        assert _snapshot(path) == refs[0]
    return counts, neither


def test_killed_overwrites_leave_the_old_or_the_new_artifact(server, tmp_path, seed):
    rng = random.Random(seed)
    counts, neither = _kill_loop(server, tmp_path, 100, rng)
    print(f"kills: 100, {counts}")
    assert counts["neither"] == 0, (counts, neither)
    assert counts["old or new"] == 100, counts
    # the kills landed mid-write too (a temporary directory was left), not only between writes
    assert counts["temporary or backup left"] > 0, counts


@pytest.mark.slow
def test_many_killed_overwrites_leave_the_old_or_the_new_artifact(server, tmp_path, seed):
    rng = random.Random(seed)
    counts, neither = _kill_loop(server, tmp_path, 2000, rng)
    print(f"kills: 2000, {counts}")
    assert counts["neither"] == 0 and counts["old or new"] == 2000, (counts, neither)


def test_killed_fallback_overwrites_are_recovered_by_the_next_writer(server, tmp_path, seed):
    # Without renameat2 the swap is two renames; a kill between them leaves no artifact at the
    # path, the old one beside it, which the next writer puts back (and the loader names).
    rng = random.Random(seed)
    counts, _ = _kill_loop(server, tmp_path, 50, rng, exchange=False)
    print(f"fallback kills: 50, {counts}")
    assert counts["old or new"] + counts["recovered by the next writer"] == 50, counts


def test_a_kill_between_the_fallbacks_renames_is_recovered(server, tmp_path):
    """The fallback's one moment without an artifact at the path, hit for certain: the writer
    stops between its two renames and is killed there; the old artifact lies beside the path,
    the loader names it, and the next writer puts it back and writes the new one."""
    refs = _references(tmp_path)
    path = tmp_path / "net"
    write_artifact(random_artifact(1, sizes=SIZES), path)
    marker = Path(f"{path}.in-window")
    pid = int(server.ask(f"loop {path} 2"))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the writer never reached the fallback's window"
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    assert os.WIFSIGNALED(int(server.ask(f"reap {pid}")))
    marker.unlink()
    assert not path.exists()
    backups = [n for n in _leftovers(path) if ".old-" in n]
    assert len(backups) == 1 and _snapshot(path.parent / backups[0]) == refs[0]
    with pytest.raises(ArtifactError, match="an interrupted overwrite left the previous "
                                            "artifact at"):
        load_artifact(path)
    write_artifact(random_artifact(2, sizes=SIZES), path, overwrite=True)
    assert _leftovers(path) == [] and _snapshot(path) == refs[1]


def test_loader_names_the_backup_an_interrupted_fallback_left(tmp_path, seed):
    path = write_artifact(random_artifact(seed, sizes=SIZES), tmp_path / "net")
    backup = tmp_path / ".net.old-x1"
    os.rename(path, backup)  # the state a kill between the fallback's two renames leaves
    with pytest.raises(Exception, match=r"no artifact directory at .*net.*an interrupted "
                                        r"overwrite left the previous artifact at .*\.net\.old-x1"):
        load_artifact(path)
    new = random_artifact(seed + 1, sizes=SIZES)
    with pytest.raises(FileExistsError):  # restored first, so it is not silently replaced
        write_artifact(new, path)
    assert not backup.exists() and load_artifact(path).summary()


def test_a_reader_during_overwrites_gets_old_new_or_a_refusal_never_a_mix(server, tmp_path):
    # The loader opens every file in the one directory it opened first; a swap meanwhile can
    # make a file vanish (the old directory is being removed: a refusal), never mix two.
    path = write_artifact(random_artifact(1, sizes=SIZES), tmp_path / "net")
    digests = {manifest_digest(random_artifact(s, sizes=SIZES)) for s in (1, 2)}
    outcomes = {"old or new": 0, "refused": 0}
    pid = int(server.ask(f"loop {path} 1"))
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                loaded = load_artifact(path)
            except ArtifactError as exc:
                assert "missing" in str(exc) or "no artifact" in str(exc), str(exc)
                outcomes["refused"] += 1
                continue
            assert manifest_digest(loaded) in digests
            outcomes["old or new"] += 1
    finally:
        os.kill(pid, signal.SIGKILL)
        server.ask(f"reap {pid}")
    print(f"reads during overwrites: {outcomes}")
    assert outcomes["old or new"] > 0, outcomes


# -- concurrent writers ------------------------------------------------------------------------

def test_second_writer_fails_at_once_before_any_work(tmp_path, seed, monkeypatch):
    path = tmp_path / "net"
    art = random_artifact(seed, sizes=SIZES)
    calls = []
    real = artifact_module._data_files
    monkeypatch.setattr(artifact_module, "_data_files", lambda a: calls.append(1) or real(a))
    with artifact_lock(path):
        start = time.monotonic()
        for overwrite in (False, True):
            with pytest.raises(ArtifactLockedError, match=rf"^{path}: another writer holds "
                                                          rf".*\.net\.lock"):
                write_artifact(art, path, overwrite=overwrite)
        assert time.monotonic() - start < 1
    assert calls == [] and not path.exists()
    write_artifact(art, path)
    assert calls == [1] and _leftovers(path) == []


def test_lock_error_is_what_the_commands_report():
    # bitspike random catches FileExistsError, bitspike export ValueError: both report it
    exc = ArtifactLockedError("x", file="net")
    assert isinstance(exc, FileExistsError) and isinstance(exc, ValueError)


def test_lock_is_held_across_processes(tmp_path, seed):
    path = tmp_path / "net"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from sw.artifact import artifact_lock\n"
         f"with artifact_lock({str(path)!r}):\n print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ArtifactLockedError, match="another writer holds"):
            write_artifact(random_artifact(seed, sizes=SIZES), path)
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        holder.stdout.close()
    write_artifact(random_artifact(seed, sizes=SIZES), path)  # released with its holder


def test_two_writers_to_a_new_path_one_wins_the_other_fails(server, tmp_path):
    outcomes = {}
    for k in range(30):
        path = tmp_path / f"net{k}"
        codes = tuple(int(c) for c in server.ask(f"race {path}").split())
        outcomes[codes] = outcomes.get(codes, 0) + 1
        # one wrote; the other got the lock error (or, if it came after, "exists")
        assert codes in ((0, 3), (0, 4)), (k, codes)
        load_artifact(path)
        assert _leftovers(path) == []
    print(f"races: {outcomes}")


def test_concurrent_overwrites_in_threads_never_crash(tmp_path, seed):
    path = write_artifact(random_artifact(seed, sizes=SIZES), tmp_path / "net")
    arts = [random_artifact(seed + i, sizes=SIZES) for i in range(4)]
    errors, wins = [], []

    def writer(a):
        for _ in range(20):
            try:
                write_artifact(a, path, overwrite=True)
                wins.append(1)
            except ArtifactLockedError:
                pass
            except BaseException as exc:  # anything else is the bug
                errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(a,)) for a in arts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and wins, errors
    load_artifact(path)
    assert _leftovers(path) == []
    assert json.loads((path / "manifest.json").read_text())["schema_version"] == 1
