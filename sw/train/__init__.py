"""Training of binary spiking networks with AGMM (see docs/training.md).

    from sw.train import TrainConfig, train
    run = train(TrainConfig(), "runs/digits")      # the default digits model -> run directory
"""

from sw.train.config import (
    DEFAULT_LR,
    DEFAULT_THREADS,
    DEPLOYS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)
from sw.train.loop import (
    CHECKPOINT,
    CheckpointError,
    build_from_checkpoint,
    evaluate,
    load_checkpoint,
    load_data,
    state_digest,
    torch_threads,
    train,
)

__all__ = ["TrainConfig", "train", "evaluate", "load_checkpoint", "build_from_checkpoint",
           "load_data", "state_digest", "CHECKPOINT", "CheckpointError", "OPTIMIZERS",
           "SCHEDULES", "DEPLOYS", "DEFAULT_LR", "DEFAULT_THREADS", "torch_threads"]
