"""sw.data: the registry, option validation, errors for missing files, and the digits set."""

from __future__ import annotations

import numpy as np
import pytest

from sw.data import (
    DATASETS,
    Dataset,
    DatasetError,
    DatasetInfo,
    DatasetOptions,
    Split,
    load_dataset,
    load_digits,
)

FILE_BASED = ["mnist", "fashion-mnist", "cifar10", "nmnist", "dvs-gesture", "cifar10-dvs"]


def test_registry_names():
    assert sorted(DATASETS) == sorted(["digits", "digits-events", *FILE_BASED])
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.summary
        assert (spec.layout is None) == (name in ("digits", "digits-events"))


def test_unknown_dataset():
    with pytest.raises(DatasetError, match=r"unknown dataset 'mnits'; known: cifar10, "
                                           r"cifar10-dvs, digits, digits-events, dvs-gesture, "
                                           r"fashion-mnist, mnist, nmnist"):
        load_dataset("mnits")


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match=r"unknown dataset option 'time_step'; known options: "
                                        r"bin_us, bits, downsample, limit, progress, root, seed, "
                                        r"test_size, time_steps"):
        load_dataset("digits", time_step=4)


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"time_steps": 0}, ValueError, "time_steps must be between 1 and 1024, not 0"),
    ({"time_steps": 4.0}, TypeError, "time_steps must be an int, not 4.0"),
    ({"seed": -1}, ValueError, "seed must be between 0 and 4294967295, not -1"),
    ({"seed": None}, TypeError, "seed must be an int, not None"),
    ({"downsample": 0}, ValueError, "downsample must be >= 1, not 0"),
    ({"bits": 17}, ValueError, "bits must be between 1 and 16, not 17"),
    ({"bits": True}, TypeError, "bits must be an int, not True"),
    ({"bin_us": -5}, ValueError, "bin_us must be >= 1, not -5"),
    ({"limit": 0}, ValueError, "limit must be >= 1, not 0"),
    ({"test_size": 1.0}, ValueError, r"test_size must be between 0 and 1 \(exclusive\), not 1.0"),
    ({"test_size": "0.2"}, TypeError, "test_size must be a float, not '0.2'"),
    ({"progress": 1}, TypeError, "progress must be a bool, not 1"),
    ({"root": 5}, TypeError, "root must be a path, not 5"),
])
def test_option_validation(options, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        DatasetOptions(**options)
    with pytest.raises(error, match=f"^{message}$"):
        load_dataset("digits", **options)


@pytest.mark.parametrize("name", FILE_BASED)
def test_missing_root_shows_layout(name):
    with pytest.raises(DatasetError) as exc:
        load_dataset(name)
    msg = str(exc.value)
    assert msg.startswith(f"{name}: this dataset is read from local files; pass root=<directory>")
    assert "Expected layout:\n" + DATASETS[name].layout in msg


@pytest.mark.parametrize("name", FILE_BASED)
def test_root_not_a_directory(name, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as exc:
        load_dataset(name, root=missing)
    assert str(exc.value).startswith(f"{name}: dataset root {str(missing)!r} is not a directory")
    assert DATASETS[name].layout in str(exc.value)


@pytest.mark.parametrize("name", FILE_BASED)
def test_empty_root_names_path_and_layout(name, tmp_path):
    with pytest.raises(DatasetError) as exc:
        load_dataset(name, root=tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{name}: no ")
    assert repr(str(tmp_path)) in msg
    assert msg.endswith("Expected layout:\n" + DATASETS[name].layout)


def test_spike_info_validation():
    with pytest.raises(ValueError, match="input_kind must be 'multibit' or 'spike', not 'x'"):
        DatasetInfo("a", "x", 1, (1, 1, 1), 2)
    with pytest.raises(ValueError, match="spike datasets have input_bits 1 and a time_steps"):
        DatasetInfo("a", "spike", 1, (2, 4, 4), 2)


def test_split_flat():
    multibit = Split(np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2), np.zeros(2, dtype=np.int64))
    assert multibit.flat().shape == (2, 12)
    assert np.array_equal(multibit.flat()[1], np.arange(12, 24))  # row-major (C, H, W)
    spikes = Split(np.zeros((5, 4, 2, 3, 3), dtype=np.uint8), np.zeros(5, dtype=np.int64))
    assert spikes.flat().shape == (5, 4, 18)


# --- digits -----------------------------------------------------------------------------------

def _sklearn_digits():
    from sklearn.datasets import load_digits as sk_load

    d = sk_load()
    return d.data.reshape(-1, 1, 8, 8), d.target


def test_digits_default_split_matches_sklearn():
    from sklearn.model_selection import train_test_split

    data = load_dataset("digits")
    assert isinstance(data, Dataset)
    assert data.info == DatasetInfo("digits", "multibit", 5, (1, 8, 8), 10)
    x, y = _sklearn_digits()
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    assert (len(data.train), len(data.test)) == (1347, 450)
    assert data.train.x.dtype == np.uint8 and data.train.y.dtype == np.int64
    assert np.array_equal(data.train.x, xtr) and np.array_equal(data.train.y, ytr)
    assert np.array_equal(data.test.x, xte) and np.array_equal(data.test.y, yte)
    assert data.options == DatasetOptions()
    assert np.array_equal(load_digits().test.x, data.test.x)


def test_digits_seed_changes_split_and_is_stratified(seed):
    a = load_dataset("digits", seed=seed)
    b = load_dataset("digits", seed=seed)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    other = load_dataset("digits", seed=(seed + 1) % 2**32)
    assert not np.array_equal(a.test.y, other.test.y)
    # stratified: each class keeps its share of the test split, to within one image
    per_class = np.bincount(np.concatenate([a.train.y, a.test.y]), minlength=10)
    assert np.all(np.abs(np.bincount(a.test.y, minlength=10) - 0.25 * per_class) <= 1)


def test_digits_ignores_event_options():
    a = load_dataset("digits", time_steps=7, bin_us=3)
    assert a.info.time_steps is None
    assert np.array_equal(a.train.x, load_dataset("digits").train.x)


@pytest.mark.parametrize("bits", [1, 3, 4, 5])
def test_digits_bits_keeps_high_bits(bits):
    full = load_dataset("digits")
    cut = load_dataset("digits", bits=bits)
    assert cut.info.input_bits == bits
    assert np.array_equal(cut.test.x, full.test.x >> (5 - bits))
    assert cut.test.x.max() <= 2**bits - 1


def test_digits_bits_above_input_bits():
    with pytest.raises(ValueError, match="^bits must be between 1 and 5 for digits, not 6$"):
        load_dataset("digits", bits=6)


def test_digits_downsample_block_mean():
    full = load_dataset("digits")
    half = load_dataset("digits", downsample=2, bits=4)
    assert half.info.shape == (1, 4, 4) and half.info.input_bits == 4
    x = full.test.x.astype(int)
    for n in (0, 17, 449):
        for r in range(4):
            for c in range(4):
                block = x[n, 0, 2 * r:2 * r + 2, 2 * c:2 * c + 2]
                assert half.test.x[n, 0, r, c] == (block.sum() // 4) >> 1


def test_digits_downsample_must_divide():
    with pytest.raises(ValueError, match="^downsample must divide digits's 8x8 samples, not 3; "
                                         "choose one of 1, 2, 4, 8$"):
        load_dataset("digits", downsample=3)


def test_limit_draws_a_seeded_subset(seed):
    full = load_dataset("digits", seed=seed)
    part = load_dataset("digits", seed=seed, limit=50)
    assert (len(part.train), len(part.test)) == (50, 50)
    rows = {full.test.x[i].tobytes() + bytes([full.test.y[i]]) for i in range(len(full.test))}
    assert all(part.test.x[i].tobytes() + bytes([part.test.y[i]]) in rows for i in range(50))
    again = load_dataset("digits", seed=seed, limit=50)
    assert np.array_equal(part.test.x, again.test.x) and np.array_equal(part.test.y, again.test.y)
    assert len(load_dataset("digits", limit=5000).train) == 1347  # a limit above n keeps all


def test_subset_indices(seed):
    from sw.data.base import subset

    assert np.array_equal(subset(10, None, seed), np.arange(10))
    assert np.array_equal(subset(10, 10, seed), np.arange(10))
    idx = subset(100, 7, seed)
    assert len(idx) == 7 and len(set(idx.tolist())) == 7 and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, subset(100, 7, seed))


# --- bitspike datasets ------------------------------------------------------------------------

def test_cli_lists_every_dataset(capsys):
    from bitspike.cli import main

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "files", "summary"]
    assert [line.split()[0] for line in out[1:]] == list(DATASETS)
    assert main(["datasets", "--layout"]) == 0
    out = capsys.readouterr().out
    for name in FILE_BASED:
        assert f"{name} (--root <root>):\n{DATASETS[name].layout}" in out


def test_cli_layout_of_one(capsys):
    from bitspike.cli import main

    assert main(["datasets", "nmnist", "--layout"]) == 0
    assert capsys.readouterr().out == f"nmnist (--root <root>):\n{DATASETS['nmnist'].layout}\n"


def test_cli_loads_and_summarises(capsys):
    from bitspike.cli import main

    assert main(["datasets", "digits", "--bits", "4", "--limit", "30", "--seed", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("digits: multibit inputs, 4 bit, shape (1, 8, 8), 64 inputs per "
                             "sample, 10 classes (loaded in ")
    data = load_dataset("digits", bits=4, limit=30, seed=2)
    assert out[2].split()[:3] == ["train", "30", "(30,"]
    assert out[2].endswith(str(np.bincount(data.train.y, minlength=10).tolist()))
    assert f"0..{data.train.x.max()}" in out[2]


@pytest.mark.parametrize(("argv", "message"), [
    (["datasets", "mnits"], "error: unknown dataset 'mnits'; known: cifar10, cifar10-dvs"),
    (["datasets", "mnist"], "error: mnist: this dataset is read from local files; pass "
                            "root=<directory> (--root on the command line). Expected layout:"),
])
def test_cli_errors(capsys, argv, message):
    from bitspike.cli import main

    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(message)


def test_time_steps_are_capped_like_training():
    from sw.options import MAX_TIME_STEPS

    with pytest.raises(ValueError, match=r"time_steps must be between 1 and 1024, not 100000"):
        load_dataset("digits-events", time_steps=100_000)
    assert MAX_TIME_STEPS == 1024


def test_memory_is_estimated_before_allocating(monkeypatch, capsys):
    """A dataset whose frames would not fit the limit is refused with the estimate and the
    limit, before any frame is made (the limit is patched small: digits-events at T = 4 takes
    1797 x 2 copies x 4 x 128 B = 1.75 MiB)."""
    from bitspike.cli import main
    from sw.data import base, digits

    monkeypatch.setattr(base, "memory_limit", lambda: 1 << 20)
    digits._all_frames.cache_clear()
    made = []
    monkeypatch.setattr(digits, "digits_to_frames", lambda *a, **k: made.append(1))
    assert main(["datasets", "digits-events"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: digits-events: 1797 samples of (4, 2, 8, 8) frames, held 2 times "
                   "while they are made, would take 0.0 GiB of memory, more than the 0.0 GiB a "
                   "dataset may take here (a quarter of this machine's memory, at most 8 GiB); "
                   "lower time_steps, raise downsample or set limit\n")
    assert not made


def test_memory_estimate_of_event_files_comes_before_reading_them(monkeypatch, tmp_path):
    # the N-MNIST files here are not valid recordings: reading one would be another error
    from sw.data import base

    for split in ("Train", "Test"):
        (tmp_path / split / "0").mkdir(parents=True)
        (tmp_path / split / "0" / "1.bin").write_bytes(b"\xff")
    monkeypatch.setattr(base, "memory_limit", lambda: 1000)
    with pytest.raises(ValueError, match=r"nmnist: 2 samples of \(8, 2, 34, 34\) frames, held 2 "
                                         r"times while they are made, would take 0\.0 GiB"):
        load_dataset("nmnist", root=tmp_path)


def test_memory_limit_is_a_fraction_of_the_machine_at_most_a_few_gib():
    import os

    from sw.data.base import MEMORY_CAP, memory_limit

    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit() == min(MEMORY_CAP, physical // 4)
