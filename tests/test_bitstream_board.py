"""The board top's RTL (UART + host link + accelerator) in cocotb, driven by the host client.

The client code is the one ``bitspike run`` uses on a real board; only its transport differs
(the simulated UART on the Verilog's pins). Digits test samples must come back exactly as the
golden model computes them, and malformed frames must be answered with error frames.

The default suite runs a small network on Icarus; the digits-sized network at the iCEBreaker's
and the ULX3S's default foldings is ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bitstreams.boards import get_board
from bitstreams.boardsim import TESTCASES, simulate
from sim.testing import build_dir_for, require_simulator
from sw.artifact import write_artifact
from sw.data import load_dataset
from sw.folding import Folding
from sw.golden import GoldenModel
from sw.randnet import random_artifact


def _digits(n):
    return load_dataset("digits").test.flat()[:n]


def _check(results, artifact, x):
    res = results["answers_like_golden"]
    golden = GoldenModel(artifact).run(x)
    assert res["answered"] == len(x) and not res["failed"] and not res["mismatches"]
    assert res["predictions"] == golden.predictions.tolist()
    assert res["scores"] == golden.scores.tolist()


def test_board_top_with_host_client(request, seed):
    require_simulator("icarus")
    artifact = random_artifact(np.random.default_rng(seed), sizes=[64, 12, 10], time_steps=3,
                               input_kind="multibit", input_bits=5)
    build = build_dir_for(request)
    write_artifact(artifact, build / "artifact", overwrite=True)
    x = _digits(4)
    results = simulate(artifact, build / "artifact", x, build_dir=build,
                       folding=Folding.parse("16x4,4x5", artifact), testcases=TESTCASES,
                       simulator="icarus")
    _check(results, artifact, x)
    assert results["errors_are_answered"]["answered"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-85f"])
def test_board_top_digits_size(request, seed, board):
    """The default digits network's shape at the board's default folding."""
    import hw

    require_simulator("icarus")
    artifact = random_artifact(np.random.default_rng(seed), sizes=[64, 128, 10], time_steps=4,
                               input_kind="multibit", input_bits=5)
    build = build_dir_for(request)
    write_artifact(artifact, build / "artifact", overwrite=True)
    folding = hw.default_folding(artifact, budget=get_board(board).budget)
    x = _digits(12)
    results = simulate(artifact, build / "artifact", x, build_dir=build, folding=folding,
                       testcases=("answers_like_golden",), simulator="icarus")
    _check(results, artifact, x)
