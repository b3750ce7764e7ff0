"""Shared pytest configuration.

Random tests draw a fresh seed per run unless BITSPIKE_SEED is set, and print it on failure so
the run can be replayed: ``BITSPIKE_SEED=<seed> pytest ...``.
"""

from __future__ import annotations

import os
import secrets

import pytest

_SESSION_SEED = int(os.environ.get("BITSPIKE_SEED", secrets.randbits(32)))


def pytest_report_header(config):
    return f"bitspike random seed: {_SESSION_SEED} (replay with BITSPIKE_SEED={_SESSION_SEED})"


@pytest.fixture
def seed(request) -> int:
    """A per-test seed derived from the session seed and the test id; printed on failure."""
    import zlib

    value = (_SESSION_SEED ^ zlib.crc32(request.node.nodeid.encode())) & 0xFFFFFFFF
    request.node.user_properties.append(("seed", value))
    return value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        seeds = [v for k, v in item.user_properties if k == "seed"]
        if seeds:
            report.sections.append(
                ("bitspike seed", f"test seed {seeds[0]}; replay the whole run with "
                                  f"BITSPIKE_SEED={_SESSION_SEED}"))


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test():
    """Collect garbage as each test ends, so that an Amaranth component the test built but never
    elaborated (UnusedElaboratable, an error under PYTHONWARNINGS=error) is reported in the test
    that built it, not in whichever later test the collector happens to run in."""
    import gc

    yield
    gc.collect()
