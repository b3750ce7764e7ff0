"""The checkpoint ``bitspike nir import`` writes: a NIR graph's float network, which
``bitspike export`` folds into an artifact (docs/nir.md, "Checkpoint").

    from sw.nir_checkpoint import fold, make_checkpoint, write_checkpoint
    ckpt = make_checkpoint(read_graph_dict("model.nir"), source="model.nir", time_steps=8)
    artifact, report = fold(ckpt)          # what `bitspike export` does with the file
    write_checkpoint(ckpt, "model.pt")

The checkpoint is a ``torch.save`` file (read with ``weights_only=True``, as a training
checkpoint is) holding

* ``graph``: the graph exactly as the NIR file holds it (nir's plain dict,
  ``nir.serialization.hdf2dict``): every numeric array and scalar a tensor of the file's dtype,
  every string array a list, so the graph rebuilt from it is the one ``nir.read`` builds;
* ``import``: the mapping's options (``time_steps``, ``input_kind``, ``input_bits``, ``dt``,
  ``binarize``) as the command took them;
* ``source`` (the graph file and its SHA-256), ``mapping`` (what the import reported) and the
  versions of nir and torch, for the record.

Folding it is the mapping of :func:`sw.nir.graph_to_artifact` on that graph with those options,
so ``bitspike export CHECKPOINT -o A`` and ``bitspike nir import GRAPH -o A --export`` write
the same artifact, byte for byte: the import folds the checkpoint it built in memory, and the
file gives back that graph exactly (:func:`encode`, :func:`decode`). Building and folding one
in memory needs no torch (``--export``); writing and reading the file does. It holds
no training run: ``bitspike train --resume`` and the other readers of a training checkpoint
refuse it (:func:`sw.train.loop.load_checkpoint`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "OPTIONS", "CheckpointError", "make_checkpoint",
           "write_checkpoint", "from_file", "fold", "encode", "decode"]

FORMAT = "bitspike-nir-checkpoint"
FORMAT_VERSION = 1
#: the options of :func:`sw.nir.graph_to_artifact` a checkpoint records (None: the default)
OPTIONS = ("time_steps", "input_kind", "input_bits", "dt", "binarize")

_STRINGS, _SCALAR = "__strings__", "__scalar__"


class CheckpointError(ValueError):
    """A NIR import checkpoint's file has a wrong version or field."""


def encode(value, where: tuple = ()):
    """nir's plain dict of a graph as values ``torch.load(weights_only=True)`` reads: numeric
    numpy arrays and scalars as tensors of the same dtype (a scalar as ``{"__scalar__": 0-d
    tensor}``), string arrays (the edges) as ``{"__strings__": [...], "shape": [...],
    "dtype": ...}``. A value of another kind is a :class:`~sw.nir.NIRError` naming its node."""
    import torch

    if isinstance(value, dict):
        return {str(k): encode(v, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf":
            tensor = torch.from_numpy(np.array(arr, order="C", copy=True))
            return {_SCALAR: tensor} if isinstance(value, np.generic) else tensor
        if arr.dtype.kind in "OSU" and isinstance(value, np.ndarray):
            items = [v.item() if isinstance(v, np.generic) else v for v in arr.ravel()]
            if all(isinstance(v, (str, bytes)) for v in items):
                return {_STRINGS: items, "shape": list(arr.shape), "dtype": arr.dtype.str}
        what = f"a {arr.dtype} value"
    elif value is None or isinstance(value, (str, bytes, bool, int, float)):
        return value
    else:
        what = f"a {type(value).__name__} value"
    from sw.nir import NIRError

    node = where[1] if len(where) > 1 and where[0] == "nodes" else None
    raise NIRError(f"{what} ({'.'.join(where)}) cannot be stored in a checkpoint; pass "
                   f"--export to write the artifact", node=node)


def decode(value):
    """The inverse of :func:`encode`: the dict nir builds the graph from."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.numpy().copy()
    if isinstance(value, dict):
        if set(value) == {_SCALAR} and isinstance(value[_SCALAR], torch.Tensor):
            return value[_SCALAR].numpy()[()]
        if set(value) == {_STRINGS, "shape", "dtype"}:
            items = np.empty(len(value[_STRINGS]), dtype=np.dtype(value["dtype"]))
            items[:] = value[_STRINGS]
            return items.reshape(value["shape"])
        return {k: decode(v) for k, v in value.items()}
    return value


def make_checkpoint(graph: dict, *, source, time_steps=None, input_kind=None, input_bits=None,
                    dt=None, binarize=False) -> dict:
    """The checkpoint of ``graph`` (:func:`sw.nir.read_graph_dict` of the file ``source``) with
    the mapping's options, in memory (the graph as numpy; :func:`write_checkpoint` encodes it);
    :func:`fold` maps it (and says why it cannot)."""
    from sw.digest import Sha256
    from sw.nir import _nir

    source = Path(source)
    return {
        "format": FORMAT, "version": FORMAT_VERSION,
        "graph": graph,
        "import": {"time_steps": time_steps, "input_kind": input_kind,
                   "input_bits": input_bits, "dt": dt, "binarize": bool(binarize)},
        "source": {"path": str(source), "sha256": str(Sha256.of_file(source))},
        "nir_version": str(_nir().version),
    }


def write_checkpoint(ckpt: dict, path) -> Path:
    """``torch.save`` of ``ckpt`` (its graph encoded, :func:`encode`) through a temporary sibling
    renamed into place (nothing half-written)."""
    import torch

    from sw.atomic import atomic_path

    state = {**ckpt, "graph": encode(ckpt["graph"]), "torch_version": str(torch.__version__)}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return Path(path)


def from_file(ckpt: dict, path) -> dict:
    """``ckpt`` as :func:`make_checkpoint` made it, from the dict ``torch.load`` read from
    ``path`` (tagged :data:`FORMAT`): its version and fields checked, its graph decoded
    (:func:`decode`); a problem as a :class:`CheckpointError` naming the file and the field
    (:func:`sw.train.loop.load_checkpoint` raises it as its own)."""
    if ckpt.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: NIR import checkpoint version {ckpt.get('version')!r}; "
                              f"this bitspike reads version {FORMAT_VERSION}")
    if not isinstance(ckpt.get("graph"), dict):
        raise CheckpointError(f"{path}: field 'graph' is not a NIR graph's dict")
    options = ckpt.get("import")
    if not isinstance(options, dict) or set(options) != set(OPTIONS):
        raise CheckpointError(f"{path}: field 'import' must hold exactly "
                              f"{', '.join(OPTIONS)}, not {options!r}")
    kinds = {"time_steps": int, "input_kind": str, "input_bits": int, "dt": float}
    for name, kind in kinds.items():
        value = options[name]
        if value is not None and (type(value) is not kind):
            raise CheckpointError(f"{path}: field 'import.{name}' must be a {kind.__name__} or "
                                  f"None, not {value!r}")
    if options["dt"] is not None and not (options["dt"] > 0 and math.isfinite(options["dt"])):
        raise CheckpointError(f"{path}: field 'import.dt' must be a positive number, not "
                              f"{options['dt']!r}")
    if type(options["binarize"]) is not bool:
        raise CheckpointError(f"{path}: field 'import.binarize' must be a bool, not "
                              f"{options['binarize']!r}")
    return {**ckpt, "graph": decode(ckpt["graph"])}


def fold(ckpt: dict):
    """``(artifact, ImportReport)``: the checkpoint's graph mapped with its options
    (:func:`sw.nir.graph_to_artifact`); raises :class:`~sw.nir.NIRError` naming the node."""
    from sw.nir import graph_from_dict, graph_to_artifact

    source = ckpt.get("path") or ckpt["source"]["path"]
    graph = graph_from_dict(ckpt["graph"], source)
    return graph_to_artifact(graph, **ckpt["import"])
