"""Training configuration: one frozen, validated dataclass, saved as JSON in every run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from sw.checks import check_bool, check_int, check_optional_int, is_int, is_real
from sw.models import MODELS, PROFILES, parse_sizes, preset_defaults
from sw.nn import ALPHAS, MOMENTS, SCALES, STATS, SURROGATES
from sw.options import MAX_TIME_STEPS

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULES", "DEPLOYS", "AMPS", "DEFAULT_LR",
           "GENERIC_DEFAULTS"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
#: what happens to the AGMM gate for deployment: kept (folded into step_gain; needs
#: stat="batch"), or removed by a gate-free fine-tune at the end of training
DEPLOYS = ("keep", "finetune")
#: mixed precision: "auto" = bf16 autocast on CUDA only (off on CPU), "on" (needs CUDA), "off"
AMPS = ("auto", "on", "off")
#: learning rate when none is given
DEFAULT_LR = {"adam": 1e-2, "sgd": 0.1}
#: torch CPU threads for training unless told otherwise. The small models run fastest on one
#: thread (several slow down badly on a busy machine), and on one thread the float reductions,
#: hence the trained weights, do not depend on the machine's core count.
DEFAULT_THREADS = 1
#: The defaults of the options a model preset (sw.models.PRESETS) may change, for every model
#: without a preset: a field left None takes its preset's value, else this one.
GENERIC_DEFAULTS = {"dataset": "digits", "channels": (16, "M", 32, "M"), "epochs": 50}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the defaults are the default digits model).

    ``dataset``, ``channels`` and ``epochs`` left None take the model preset's default
    (:data:`sw.models.PRESETS`, e.g. ``model="conv"``), else :data:`GENERIC_DEFAULTS`; a value
    given explicitly always wins. The config holds (and saves) the resolved values.

    Parameters
    ----------
    dataset : str
        Name in ``sw.data.DATASETS``.
    root : str or None
        Dataset root for file-based datasets.
    data_seed : int
        Seed of the dataset's train/test split and of the ``limit`` subset (kept apart from
        ``seed`` so every run of a dataset tests on the same split; ``bitspike golden`` uses
        the one the artifact records).
    downsample, bits, bin_us, limit : int or None
        Dataset options (:class:`sw.data.DatasetOptions`; docs/datasets.md): spatial pooling
        factor, most significant bits kept of multi-bit pixels, fixed event bins in µs, at
        most this many samples per split. None: the dataset's default.
    model : str
        A key of :data:`sw.models.MODELS`: ``"mlp"``, ``"vgg"``, ``"resnet18"`` or a preset of
        :data:`sw.models.PRESETS` (``"conv"``, ``"conv-events"``).
    hidden : tuple of int
        MLP hidden sizes.
    channels : tuple
        VGG channel list (``"M"`` = 2x2 max-pool).
    width : int
        ResNet-18 first-stage channels (64 as in the paper; the stages have 1, 2, 4, 8 times it).
    profile : {"hardware", "paper"}
    time_steps : int
        T.
    threshold, leak_shift, reset, surrogate, surrogate_alpha, detach_reset
        LIF neuron (:class:`sw.nn.LIF`); ``leak_shift`` None is no leak.
    weight_scale : {None, "mean", "learned"}
        Per-output-channel scale of the binary synapses.
    agmm : bool
        Put an AGMM gate after every block.
    agmm_stat, agmm_moment, agmm_alpha, agmm_alpha_init
        Gate variant (:class:`sw.nn.AGMMGate`).
    agmm_deploy : {"keep", "finetune"}
        Remove the gate with ``finetune_epochs`` gate-free epochs at the end (default: the
        deployed model then needs no step gains, docs/agmm.md), or keep it at inference (a
        per-time-step constant folded into ``step_gain``; needs ``agmm_stat="batch"``).
    finetune_epochs : int
        Gate-free epochs after ``epochs`` (only with ``agmm`` and ``agmm_deploy="finetune"``;
        ignored otherwise).
    finetune_lr_factor : float
        Fine-tune learning rate = ``lr * finetune_lr_factor`` (cosine to 0).
    epochs, batch_size : int
        ``batch_size`` is the global batch (split across DDP processes).
    optimizer : {"adam", "sgd"}
        SGD uses Nesterov-free momentum ``momentum``.
    lr : float or None
        None: :data:`DEFAULT_LR` of the optimizer.
    momentum, weight_decay : float
        ``weight_decay`` applies to full-precision parameters only, never latent binary weights.
    schedule : {"cosine", "constant"}
        Cosine decay per optimizer step to 0.
    seed : int
        Model initialisation and batch order.
    device : str
        "auto" (CUDA when present), "cpu", "cuda", "cuda:N".
    amp : {"auto", "on", "off"}
        bf16 autocast of the training forward pass: "auto" on CUDA for resnet18 only, "on" (an
        error on CPU), "off". Spikes, LIF state and gates stay float32; evaluation runs in float32.
    """

    dataset: str | None = None
    root: str | None = None
    data_seed: int = 0
    downsample: int | None = None
    bits: int | None = None
    bin_us: int | None = None
    limit: int | None = None
    model: str = "mlp"
    hidden: tuple = (128,)
    channels: tuple | None = None
    width: int = 64
    profile: str = "hardware"
    time_steps: int = 4
    threshold: float = 1.0
    leak_shift: int | None = 2
    reset: str = "hard"
    surrogate: str = "triangle"
    surrogate_alpha: float | None = None
    detach_reset: bool = False
    weight_scale: str | None = None
    agmm: bool = True
    agmm_stat: str = "batch"
    agmm_moment: str = "mean"
    agmm_alpha: str = "learned"
    agmm_alpha_init: float = 1.0
    agmm_deploy: str = "finetune"
    finetune_epochs: int = 10
    finetune_lr_factor: float = 0.1
    epochs: int | None = None
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"

    def __post_init__(self):
        set_ = object.__setattr__
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, not {self.model!r}")
        # explicit values win; then the model preset's default; then the generic one
        preset = preset_defaults(self.model)
        for name, generic in GENERIC_DEFAULTS.items():
            if getattr(self, name) is None:
                set_(self, name, preset.get(name, generic))
        set_(self, "hidden", parse_sizes(self.hidden, "hidden"))
        set_(self, "channels", parse_sizes(self.channels, "channels"))
        if not isinstance(self.dataset, str) or not self.dataset:
            raise TypeError(f"dataset must be a non-empty str, not {self.dataset!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, not {self.profile!r}")
        for name in ("data_seed", "seed", "time_steps", "epochs", "batch_size",
                     "finetune_epochs"):
            check_int(name, getattr(self, name))
        check_int("width", self.width, 1, 4096)
        if not 1 <= self.time_steps <= MAX_TIME_STEPS:
            raise ValueError(f"time_steps must be between 1 and {MAX_TIME_STEPS}, not "
                             f"{self.time_steps}")
        for name, lo, hi in (("downsample", 1, None), ("bits", 1, 16), ("bin_us", 1, None),
                             ("limit", 1, None)):
            check_optional_int(name, getattr(self, name), lo, hi)
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, not {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, not {self.batch_size}")
        if self.finetune_epochs < 0:
            raise ValueError(f"finetune_epochs must be >= 0, not {self.finetune_epochs}")
        if self.leak_shift is not None and (not is_int(self.leak_shift)
                                            or not 1 <= self.leak_shift <= 30):
            raise ValueError(f"leak_shift must be None or an int in 1..30, not "
                             f"{self.leak_shift!r}")
        if not is_real(self.threshold) or not self.threshold > 0:
            raise ValueError(f"threshold must be a positive number, not {self.threshold!r}")
        if self.reset not in ("hard", "soft"):
            raise ValueError(f"reset must be 'hard' or 'soft', not {self.reset!r}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, not "
                             f"{self.surrogate!r}")
        if self.weight_scale not in SCALES:
            raise ValueError(f"weight_scale must be one of {SCALES}, not {self.weight_scale!r}")
        check_bool("agmm", self.agmm)
        for name, allowed in (("agmm_stat", STATS), ("agmm_moment", MOMENTS),
                              ("agmm_alpha", ALPHAS), ("agmm_deploy", DEPLOYS),
                              ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("amp", AMPS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not "
                                 f"{getattr(self, name)!r}")
        if not is_real(self.agmm_alpha_init) or not self.agmm_alpha_init > 0:
            raise ValueError(f"agmm_alpha_init must be a positive number, not "
                             f"{self.agmm_alpha_init!r}")
        if self.agmm and self.agmm_deploy == "finetune" and self.finetune_epochs < 1:
            raise ValueError(f"agmm_deploy='finetune' needs finetune_epochs >= 1, not "
                             f"{self.finetune_epochs} (or agmm_deploy='keep' to keep the gate)")
        if self.lr is not None and (not is_real(self.lr) or not self.lr > 0
                                    or not math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number or None, not {self.lr!r}")
        for name in ("momentum", "weight_decay", "finetune_lr_factor"):
            v = getattr(self, name)
            if not is_real(v) or v < 0 or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number >= 0, not {v!r}")
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a str, not {self.device!r}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def finetunes(self) -> bool:
        """True when the run ends with a gate-free fine-tune."""
        return self.agmm and self.agmm_deploy == "finetune"

    @property
    def total_epochs(self) -> int:
        return self.epochs + (self.finetune_epochs if self.finetunes else 0)

    def agmm_options(self) -> dict | None:
        if not self.agmm:
            return None
        return dict(stat=self.agmm_stat, moment=self.agmm_moment, alpha=self.agmm_alpha,
                    alpha_init=float(self.agmm_alpha_init))

    def model_options(self) -> dict:
        return dict(time_steps=self.time_steps, profile=self.profile, hidden=self.hidden,
                    channels=self.channels, width=self.width, threshold=float(self.threshold),
                    leak_shift=self.leak_shift, reset=self.reset, surrogate=self.surrogate,
                    surrogate_alpha=self.surrogate_alpha, detach_reset=self.detach_reset,
                    agmm=self.agmm_options(), weight_scale=self.weight_scale)

    def to_json(self) -> dict:
        obj = asdict(self)
        obj["hidden"] = list(self.hidden)
        obj["channels"] = list(self.channels)
        return obj

    @classmethod
    def from_json(cls, obj: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        return cls(**obj)

    def replace(self, **changes) -> TrainConfig:
        obj = self.to_json()
        obj.update(changes)
        return TrainConfig.from_json(obj)
