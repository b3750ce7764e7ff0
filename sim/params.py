"""Parameters of a testbench run, carried from pytest (or the CLI) to cocotb by environment.

The cocotb test module runs inside the simulator process, so its parameters travel as
environment variables. :class:`TBParams` is the one place that names them: the caller builds
one and passes :meth:`TBParams.to_env` to :func:`sim.runner.run`; the testbench reads it back with
:meth:`TBParams.from_env`. Every value is validated on both sides.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields

from sw.checks import is_int, is_real

__all__ = ["TBParams", "ENV_VAR", "CORRUPT_KINDS"]

#: The single environment variable holding the JSON-encoded parameters.
ENV_VAR = "BITSPIKE_TB"

#: What a "test of the test" may corrupt in the golden expectation before comparing.
CORRUPT_KINDS = ("none", "score", "prediction", "membrane", "spike", "item")


@dataclass(frozen=True)
class TBParams:
    """Parameters of one testbench run.

    Attributes
    ----------
    description : str
        Path of the hardware's JSON description (ports, payload layouts, cycles).
    seed : int
        Seed of every random choice in the testbench (gaps, backpressure, reset times, inputs
        it draws itself). The same seed replays the same run.
    artifact : str
        Artifact directory (accelerator testbenches).
    inputs : str
        ``.npy`` file of input samples (accelerator testbenches).
    samples : int
        Samples / items to send (when the testbench draws them itself).
    sample_offset : int
        Index of the first input sample in the whole run (when a run is split over several
        simulator processes), so messages and results name samples globally.
    gaps : float
        Probability of an idle cycle before each input beat (0: back to back).
    backpressure : float
        Probability that the output's ready is low in a cycle (0: always ready).
    trace : bool
        Compare the debug trace stream (every layer's membranes and spikes) too.
    corrupt : str
        One of :data:`CORRUPT_KINDS`: change one golden value before comparing, so a correct
        design must FAIL (a test of the test).
    corrupt_at : int
        Which sample (or item) to corrupt.
    results : str
        JSON file the testbench writes its measurements and mismatches to.
    progress : str
        File the testbench rewrites with the count of finished samples (for a progress bar).
    timeout_factor : float
        A stall is declared after this many times the ideal cycles of the run (plus a margin).
    extra : dict
        Testbench-specific options.
    """

    description: str = ""
    seed: int = 0
    artifact: str = ""
    inputs: str = ""
    samples: int = 0
    sample_offset: int = 0
    gaps: float = 0.0
    backpressure: float = 0.0
    trace: bool = False
    corrupt: str = "none"
    corrupt_at: int = 0
    results: str = ""
    progress: str = ""
    timeout_factor: float = 20.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not is_int(self.seed):
            raise TypeError(f"seed must be an int, not {self.seed!r}")
        if not is_int(self.samples) or self.samples < 0:
            raise ValueError(f"samples must be an int >= 0, not {self.samples!r}")
        for name in ("gaps", "backpressure"):
            v = getattr(self, name)
            if not is_real(v) or not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1), not {v!r}")
        if self.corrupt not in CORRUPT_KINDS:
            raise ValueError(f"corrupt must be one of {', '.join(CORRUPT_KINDS)}, "
                             f"not {self.corrupt!r}")
        if not isinstance(self.sample_offset, int) or self.sample_offset < 0:
            raise ValueError(f"sample_offset must be an int >= 0, not {self.sample_offset!r}")
        if not isinstance(self.corrupt_at, int) or self.corrupt_at < 0:
            raise ValueError(f"corrupt_at must be an int >= 0, not {self.corrupt_at!r}")
        if not self.timeout_factor > 0:
            raise ValueError(f"timeout_factor must be > 0, not {self.timeout_factor!r}")

    def to_env(self) -> dict:
        return {ENV_VAR: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ=None) -> TBParams:
        environ = os.environ if environ is None else environ
        raw = environ.get(ENV_VAR)
        if raw is None:
            raise RuntimeError(f"{ENV_VAR} is not set: run this testbench through sim.runner "
                               f"(e.g. the tests in tests/test_sim*.py), not on its own")
        obj = json.loads(raw)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"{ENV_VAR}: unknown parameters {unknown}")
        return cls(**obj)

    def replay_hint(self) -> str:
        return f"seed {self.seed} (gaps {self.gaps}, backpressure {self.backpressure})"
