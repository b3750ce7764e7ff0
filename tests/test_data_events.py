"""Event binning, and N-MNIST / DVS128 Gesture / CIFAR10-DVS on tiny files written here in their
real formats, with the frames each sample must give worked out by hand."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sw.data import DatasetError, DatasetInfo, load_dataset
from sw.data.events import Events, bin_events
from sw.data.formats import read_aedat31, read_nmnist
from sw.data.neuromorphic import CIFAR10_DVS_CLASSES


def _events(rows):
    x, y, p, t = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    return Events(x, y, p, t)


def _hits(frames):
    """The set of (bin, channel, row, col) that are 1."""
    return set(zip(*(a.tolist() for a in np.nonzero(frames)), strict=True))


# --- binning ----------------------------------------------------------------------------------

EVENTS = [(0, 0, 1, 100), (1, 0, 0, 150), (2, 3, 1, 199), (3, 3, 1, 300), (33, 33, 0, 499)]


def test_equal_bins_by_hand():
    # window [100, 500), T = 4: bin = (t - 100) * 4 // 400
    frames = bin_events(_events(EVENTS), time_steps=4, height=34, width=34)
    assert frames.shape == (4, 2, 34, 34) and frames.dtype == np.uint8
    assert _hits(frames) == {(0, 1, 0, 0), (0, 0, 0, 1), (0, 1, 3, 2), (2, 1, 3, 3),
                             (3, 0, 33, 33)}


def test_explicit_window_drops_outside():
    frames = bin_events(_events(EVENTS), time_steps=2, height=34, width=34, t_start=150,
                        t_end=300)
    # [150, 300): bin = (t - 150) * 2 // 150; t = 100, 300, 499 are outside
    assert _hits(frames) == {(0, 0, 0, 1), (0, 1, 3, 2)}


def test_fixed_bins_by_hand():
    # bin = (t - 100) // 150, kept while < 2: 100, 150, 199 -> 0; 300 -> 1; 499 -> 2 dropped
    frames = bin_events(_events(EVENTS), time_steps=2, height=34, width=34, bin_us=150)
    assert _hits(frames) == {(0, 1, 0, 0), (0, 0, 0, 1), (0, 1, 3, 2), (1, 1, 3, 3)}


def test_or_pooling_by_hand():
    frames = bin_events(_events(EVENTS), time_steps=1, height=34, width=34, downsample=2)
    assert frames.shape == (1, 2, 17, 17)
    # x, y = (0, 0) ON and (1, 0) OFF both pool into (0, 0); (2, 3) and (3, 3), both ON, into
    # row 1, col 1; (33, 33) OFF into (16, 16)
    assert _hits(frames) == {(0, 1, 0, 0), (0, 0, 0, 0), (0, 1, 1, 1), (0, 0, 16, 16)}


def test_no_events_and_one_event():
    empty = Events(*(np.zeros(0, dtype=np.int64) for _ in range(4)))
    assert not bin_events(empty, time_steps=3, height=4, width=4).any()
    one = bin_events(_events([(1, 2, 0, 77)]), time_steps=3, height=4, width=4)
    assert _hits(one) == {(0, 0, 2, 1)}


def test_every_event_lands_in_its_bin(seed):
    rng = np.random.default_rng(seed)
    n, T = 200, 5
    ev = Events(rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n),
                np.sort(rng.integers(0, 10**6, n)))
    frames = bin_events(ev, time_steps=T, height=34, width=34, downsample=2)
    start, end = int(ev.t.min()), int(ev.t.max()) + 1
    want = np.zeros_like(frames)
    for x, y, p, t in zip(*ev, strict=True):
        b = int((t - start) * T // (end - start))
        want[b, p, y // 2, x // 2] = 1
    assert np.array_equal(frames, want)


# --- N-MNIST ----------------------------------------------------------------------------------

def _nmnist_bytes(events) -> bytes:
    """5 bytes per event: x, y, polarity << 7 | t[22:16], t[15:8], t[7:0]."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


NMNIST_FILES = {
    ("Train", 0, "00001.bin"): [(0, 0, 1, 0), (33, 33, 0, 5000), (10, 20, 1, 9999)],
    ("Train", 3, "00002.bin"): [(1, 2, 1, 8388000), (3, 4, 0, 8388607)],
    ("Train", 3, "00010.bin"): [(5, 5, 0, 7)],
    ("Test", 9, "00005.bin"): [(30, 1, 1, 100), (2, 31, 0, 200), (2, 31, 1, 300)],
}


def _write_nmnist(root):
    for (split, digit, name), events in NMNIST_FILES.items():
        folder = root / split / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(_nmnist_bytes(events))


def test_nmnist_reader_bit_layout(tmp_path):
    path = tmp_path / "x.bin"
    # t = 0x7FFFFF fills every timestamp bit next to an OFF polarity bit
    path.write_bytes(bytes([7, 9, 0x7F, 0xFF, 0xFF, 33, 0, 0x80, 0x00, 0x01]))
    ev = read_nmnist(path)
    assert ev.x.tolist() == [7, 33] and ev.y.tolist() == [9, 0]
    assert ev.p.tolist() == [0, 1] and ev.t.tolist() == [8388607, 1]


@pytest.mark.parametrize("sub", ["", "NMNIST", "N-MNIST"])
def test_nmnist_by_hand(tmp_path, sub):
    _write_nmnist(tmp_path / sub if sub else tmp_path)
    data = load_dataset("nmnist", root=tmp_path, time_steps=2)
    assert data.info == DatasetInfo("nmnist", "spike", 1, (2, 34, 34), 10, 2)
    assert data.train.x.shape == (3, 2, 2, 34, 34) and data.train.x.dtype == np.uint8
    assert data.train.y.tolist() == [0, 3, 3] and data.test.y.tolist() == [9]
    # window [0, 10000): bin = t * 2 // 10000
    assert _hits(data.train.x[0]) == {(0, 1, 0, 0), (1, 0, 33, 33), (1, 1, 20, 10)}
    # window [8388000, 8388608): 0 -> bin 0, 607 * 2 // 608 = 1
    assert _hits(data.train.x[1]) == {(0, 1, 2, 1), (1, 0, 4, 3)}
    assert _hits(data.train.x[2]) == {(0, 0, 5, 5)}
    # window [100, 301): 0, 200 // 201 = 0, 400 // 201 = 1
    assert _hits(data.test.x[0]) == {(0, 1, 1, 30), (0, 0, 31, 2), (1, 1, 31, 2)}


def test_nmnist_options(tmp_path):
    _write_nmnist(tmp_path)
    data = load_dataset("nmnist", root=tmp_path, time_steps=1, downsample=17, bin_us=5000)
    assert data.info.shape == (2, 2, 2) and data.train.x.shape == (3, 1, 2, 2, 2)
    # bin_us 5000 keeps t - start < 5000: only the first event of file 1
    assert _hits(data.train.x[0]) == {(0, 1, 0, 0)}
    limited = load_dataset("nmnist", root=tmp_path, limit=2, seed=5)
    assert len(limited.train) == 2 and len(limited.test) == 1
    assert limited.info.time_steps == 8  # the default T
    with pytest.raises(ValueError, match="^downsample must divide nmnist's 34x34 sensor, not 4; "
                                         "choose one of 1, 2, 17, 34$"):
        load_dataset("nmnist", root=tmp_path, downsample=4)


def test_nmnist_malformed(tmp_path):
    _write_nmnist(tmp_path)
    bad = tmp_path / "Test" / "9" / "00006.bin"
    bad.write_bytes(b"\0" * 7)
    with pytest.raises(DatasetError, match=f"^{str(bad)!r}: N-MNIST files hold 5 bytes per "
                                           f"event, this one has 7 bytes$"):
        load_dataset("nmnist", root=tmp_path)
    bad.write_bytes(_nmnist_bytes([(34, 0, 1, 5)]))
    with pytest.raises(DatasetError, match="outside the 34x34 N-MNIST sensor"):
        load_dataset("nmnist", root=tmp_path)


def test_nmnist_missing_test(tmp_path):
    (tmp_path / "Train" / "1").mkdir(parents=True)
    (tmp_path / "Train" / "1" / "00001.bin").write_bytes(_nmnist_bytes([(1, 1, 1, 1)]))
    with pytest.raises(DatasetError, match=r"^nmnist: no <digit>/\*\.bin files in .*Test'\. "
                                           r"Expected layout:\n"):
        load_dataset("nmnist", root=tmp_path)


# --- DVS128 Gesture (AEDAT 3.1) ---------------------------------------------------------------

AEDAT31_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                  b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def _packet(events, *, etype=1, overflow=0, padding=()):
    """A cAER packet: 28-byte header, then (data, timestamp) for events and padding slots.

    An event is (x, y, polarity, timestamp, valid); data = x << 17 | y << 2 | p << 1 | valid.
    """
    slots = list(events) + list(padding)
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | v, t)
                    for x, y, p, t, v in slots)
    header = struct.pack("<hhiiiiii", etype, 1, 8, 4, overflow, len(slots), len(events),
                         sum(e[4] for e in events))
    return header + body


def _write_gesture(folder, *, out_of_order=False):
    folder.mkdir(parents=True, exist_ok=True)
    late = [
        (64, 100, 1, 1500, 1),    # sample 0, bin 1, ON, (3, 2)
        (10, 10, 1, 1700, 0),     # invalid: dropped
        (40, 40, 0, 1999, 1),     # sample 0, bin 1, OFF, (1, 1)
        (0, 127, 1, 2000, 1),     # sample 1, bin 0, ON, (3, 0)
        (127, 127, 0, 2999, 1),   # sample 1, bin 1, OFF, (3, 3)
    ]
    if out_of_order:  # timestamps not sorted: the loader must still find every window's events
        late = late[::-1]
    user01 = AEDAT31_HEADER + _packet([
        (5, 6, 1, 900, 1),        # before the first label window
        (5, 6, 1, 1000, 1),       # sample 0, bin 0, ON, frame pixel (0, 0)
        (127, 0, 0, 1499, 1),     # sample 0, bin 0, OFF, (0, 3)
    ]) + _packet([(10, 10, 1, 1600, 1)], etype=0) + _packet(  # a special-event packet
        late, padding=[(100, 100, 1, 2500, 1)])  # capacity beyond eventNumber: not events
    (folder / "user01_natural.aedat").write_bytes(user01)
    (folder / "user01_natural_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n3,1000,2000\n7,2000,3000\n")
    user02 = AEDAT31_HEADER + _packet([(1, 1, 1, 2**31 - 500, 1)]) + _packet([
        (33, 65, 0, 100, 1),      # time 2**31 + 100: bin 0, OFF, (2, 1)
        (97, 2, 1, 600, 1),       # 2**31 + 600: bin 1, ON, (0, 3)
        (50, 50, 1, 1500, 1),     # 2**31 + 1500: the window's end, excluded
    ], overflow=1)
    (folder / "user02_lab.aedat").write_bytes(user02)
    (folder / "user02_lab_labels.csv").write_text(
        f"class,startTime_usec,endTime_usec\r\n11,{2**31 - 500},{2**31 + 1500}\r\n\r\n")
    (folder / "trials_to_train.txt").write_text("user01_natural.aedat\n")
    (folder / "trials_to_test.txt").write_text("user02_lab.aedat\n\n")


def test_aedat31_reader(tmp_path):
    _write_gesture(tmp_path)
    ev = read_aedat31(tmp_path / "user02_lab.aedat")
    assert ev.t.tolist() == [2**31 - 500, 2**31 + 100, 2**31 + 600, 2**31 + 1500]
    assert ev.x.tolist() == [1, 33, 97, 50] and ev.y.tolist() == [1, 65, 2, 50]
    assert ev.p.tolist() == [1, 0, 1, 1]
    ev = read_aedat31(tmp_path / "user01_natural.aedat")
    assert ev.t.tolist() == [900, 1000, 1499, 1500, 1999, 2000, 2999]


@pytest.mark.parametrize(("sub", "out_of_order"), [("DvsGesture", False), ("", False),
                                                   ("", True)])
def test_dvs_gesture_by_hand(tmp_path, sub, out_of_order):
    _write_gesture(tmp_path / sub if sub else tmp_path, out_of_order=out_of_order)
    data = load_dataset("dvs-gesture", root=tmp_path, time_steps=2, downsample=32)
    assert data.info == DatasetInfo("dvs-gesture", "spike", 1, (2, 4, 4), 11, 2)
    assert data.train.y.tolist() == [2, 6] and data.test.y.tolist() == [10]
    assert data.train.x.shape == (2, 2, 2, 4, 4)
    # window [1000, 2000): bin = (t - 1000) * 2 // 1000
    assert _hits(data.train.x[0]) == {(0, 1, 0, 0), (0, 0, 0, 3), (1, 1, 3, 2), (1, 0, 1, 1)}
    assert _hits(data.train.x[1]) == {(0, 1, 3, 0), (1, 0, 3, 3)}
    # window [2**31 - 500, 2**31 + 1500): the halves meet at 2**31 + 500
    assert _hits(data.test.x[0]) == {(0, 1, 0, 0), (0, 0, 2, 1), (1, 1, 0, 3)}


def test_dvs_gesture_defaults_and_fixed_bins(tmp_path):
    _write_gesture(tmp_path)
    data = load_dataset("dvs-gesture", root=tmp_path)
    assert data.info.shape == (2, 32, 32) and data.info.time_steps == 8
    fixed = load_dataset("dvs-gesture", root=tmp_path, time_steps=2, downsample=32, bin_us=250)
    # [1000, 1250) -> 0, [1250, 1500) -> 1, later events dropped
    assert _hits(fixed.train.x[0]) == {(0, 1, 0, 0), (1, 0, 0, 3)}


def test_dvs_gesture_errors(tmp_path):
    _write_gesture(tmp_path)
    csv = tmp_path / "user01_natural_labels.csv"
    csv.write_text("class,startTime_usec,endTime_usec\n3,1000\n")
    with pytest.raises(DatasetError, match=r"line 2: expected 'class,startTime_usec,"
                                           r"endTime_usec', found '3,1000'$"):
        load_dataset("dvs-gesture", root=tmp_path)
    csv.write_text("class,startTime_usec,endTime_usec\n12,1000,2000\n")
    with pytest.raises(DatasetError, match="class must be 1..11"):
        load_dataset("dvs-gesture", root=tmp_path)
    csv.unlink()
    with pytest.raises(DatasetError, match=f"^dvs-gesture: label file {str(csv)!r} is missing"):
        load_dataset("dvs-gesture", root=tmp_path)
    (tmp_path / "user02_lab.aedat").unlink()
    (tmp_path / "trials_to_train.txt").write_text("")
    with pytest.raises(DatasetError, match=r"^dvs-gesture: user02_lab\.aedat \(listed in "
                                           r"trials_to_test\.txt\) is missing from "):
        load_dataset("dvs-gesture", root=tmp_path)


def test_aedat31_malformed(tmp_path):
    path = tmp_path / "user01_natural.aedat"
    path.write_bytes(AEDAT31_HEADER + _packet([(1, 1, 1, 5, 1)])[:-3])
    with pytest.raises(DatasetError, match=f"malformed AEDAT 3.1 packet at byte "
                                           f"{len(AEDAT31_HEADER)} "):
        read_aedat31(path)
    path.write_bytes(b"#!AER-DAT2.0\r\n" + b"\0" * 8)
    with pytest.raises(DatasetError, match=r"AEDAT version 2\.0, expected 3\.1 \(cAER\)"):
        read_aedat31(path)
    path.write_bytes(AEDAT31_HEADER + _packet([(128, 1, 1, 5, 1)]))
    with pytest.raises(DatasetError, match="event at x=128, y=1 outside the 128x128 sensor"):
        read_aedat31(path)


# --- CIFAR10-DVS (AEDAT 2.0) ------------------------------------------------------------------

AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                 b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for "
                 b"each event\r\n# Timestamps tick is 1 us\r\n")


def _aedat2(events) -> bytes:
    """jAER DVS128 raw events (raw x, raw y, raw polarity (0 = ON), t); address = y<<8|x<<1|p.

    An event given as ("ext", t) is an external-input event (address bit 15).
    """
    body = b""
    for e in events:
        address = 0x8000 if e[0] == "ext" else (e[1] << 8) | (e[0] << 1) | e[2]
        body += struct.pack(">II", address, e[-1])
    return AEDAT2_HEADER + body


def _write_cifar10_dvs(root):
    for label, cls in enumerate(CIFAR10_DVS_CLASSES):
        folder = root / cls
        folder.mkdir(parents=True)
        for index in (0, 2, 10):
            events = [(label, index, 1, 5), (3, 3, 0, 9)]
            if (cls, index) == ("airplane", 2):
                events = [(0, 0, 0, 10), (5, 120, 1, 20), ("ext", 1000), (127, 64, 0, 30)]
            (folder / f"cifar10_{cls}_{index}.aedat").write_bytes(_aedat2(events))


def test_cifar10_dvs_by_hand(tmp_path):
    _write_cifar10_dvs(tmp_path / "CIFAR10-DVS")
    # 3 recordings per class; test_size 0.67 -> round(2.01) = 2 test recordings: indices 0, 2
    data = load_dataset("cifar10-dvs", root=tmp_path, time_steps=2, downsample=1, test_size=0.67)
    assert data.info == DatasetInfo("cifar10-dvs", "spike", 1, (2, 128, 128), 10, 2)
    assert data.test.y.tolist() == [c for c in range(10) for _ in range(2)]
    assert data.train.y.tolist() == list(range(10))
    # airplane 2 (second test sample): the external event is dropped, so the window is
    # [10, 31): bin = (t - 10) * 2 // 21. Image row = 127 - raw y, col = 127 - raw x, ON = raw 0
    assert _hits(data.test.x[1]) == {(0, 1, 127, 127), (0, 0, 7, 122), (1, 1, 63, 0)}
    # the train sample of class 4 is index 10: raw (4, 10) OFF at t 5 -> bin 0; raw (3, 3) ON
    assert _hits(data.train.x[4]) == {(0, 0, 117, 123), (1, 1, 124, 124)}


def test_cifar10_dvs_default_split_and_downsample(tmp_path):
    _write_cifar10_dvs(tmp_path)
    data = load_dataset("cifar10-dvs", root=tmp_path)
    # round(0.1 * 3) = 0 test recordings per class
    assert len(data.test) == 0 and data.test.x.shape == (0, 8, 2, 32, 32)
    assert len(data.train) == 30 and data.info.shape == (2, 32, 32)


def test_cifar10_dvs_rejects_aedat4(tmp_path):
    _write_cifar10_dvs(tmp_path)
    path = tmp_path / "bird" / "cifar10_bird_0.aedat"
    path.write_bytes(b"#!AER-DAT4.0\r\n" + b"\0" * 16)
    with pytest.raises(DatasetError, match=f"^{str(path)!r}: AEDAT version 4.0, expected 2.0 "
                                           f"\\(jAER\\); AEDAT 4 re-packagings are not "
                                           f"supported, use the original files$"):
        load_dataset("cifar10-dvs", root=tmp_path, test_size=0.5)


def test_cifar10_dvs_missing_class(tmp_path):
    _write_cifar10_dvs(tmp_path)
    for f in (tmp_path / "ship").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"^cifar10-dvs: no \.aedat files in .*ship'\. "
                                           r"Expected layout:\n"):
        load_dataset("cifar10-dvs", root=tmp_path)


def test_cli_summarises_event_files(tmp_path, capsys):
    from bitspike.cli import main

    _write_nmnist(tmp_path)
    assert main(["datasets", "nmnist", "--root", str(tmp_path), "--time-steps", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("nmnist: spike inputs, 1 bit, shape (2, 34, 34), T=2, 2312 inputs "
                             "per frame, 10 classes")
    assert out[2].split(None, 3)[:3] == ["train", "3", "(3,"]
    assert out[2].endswith("[1, 0, 0, 2, 0, 0, 0, 0, 0, 0]")
    assert out[3].endswith("[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]")
