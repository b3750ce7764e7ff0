"""The accelerator's JSON description, as the testbench reads it.

``hw.generate`` writes the description beside the Verilog (docs/hardware.md specifies it): the
top module, clock and reset ports, every stream with its ports and payload layout, the input
beat format (lanes, beats per sample), the folding, and the ideal cycle bound. The testbench
takes every hardware fact from here (never from its own copy of the rules), so the two cannot
drift; :meth:`Description.check_artifact` makes sure the description belongs to the artifact
the golden model runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hw.interface import sample_beats
from sim.layout import LayoutError, PayloadLayout
from sw.digest import Sha256

__all__ = ["DescriptionError", "StreamPorts", "Description"]


class DescriptionError(ValueError):
    """The description file is missing, malformed or does not match the artifact."""


@dataclass(frozen=True)
class StreamPorts:
    """The Verilog ports of one stream and its payload layout (``ready`` None: always ready)."""

    name: str
    valid: str
    ready: str | None
    payload: str
    layout: PayloadLayout


def _shape(value, path) -> tuple | None:
    """``input.shape``: null or three positive ints."""
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                       for v in value)):
        raise DescriptionError(f"{path}: input.shape must be null or [C, H, W] (positive "
                               f"ints), not {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Description:
    """What the testbench needs from the description, validated.

    Attributes
    ----------
    path : Path
    raw : dict
        The whole JSON object.
    top, clock, reset : str
    verilog : Path
    streams : dict of StreamPorts
    input_stream, output_stream : StreamPorts
    trace_streams : dict of StreamPorts, by layer name
    input_kind : {"multibit", "spike"}
    lanes, beats_per_sample, rows, inputs : int
    shape : tuple or None
        The ``(C, H, W)`` input map of a conv network (its samples are sent in element order).
    folding : list of (simd, pe)
    ideal_cycles : int
        The steady-state bound in cycles per sample.
    latency_bound : int
        An upper bound on one sample's latency through the pipeline (for timeouts).
    manifest_sha256 : Sha256 or None
        The artifact's manifest hash the generator recorded (None: not recorded).
    """

    path: Path
    raw: dict
    top: str
    clock: str
    reset: str
    verilog: Path
    streams: dict
    input_kind: str
    lanes: int
    beats_per_sample: int
    rows: int
    inputs: int
    shape: tuple | None
    input_field: str
    folding: list
    ideal_cycles: int
    latency_bound: int
    manifest_sha256: Sha256 | None

    @property
    def input_stream(self) -> StreamPorts:
        return self.streams["i"]

    @property
    def output_stream(self) -> StreamPorts:
        return self.streams["o"]

    @property
    def trace_streams(self) -> dict:
        return {s.name[len("trace_"):]: s for s in self.streams.values()
                if s.name.startswith("trace_")}

    @classmethod
    def load(cls, path) -> Description:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise DescriptionError(f"{path}: no such description file") from None
        except json.JSONDecodeError as exc:
            raise DescriptionError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_json(raw, path)

    @classmethod
    def from_json(cls, raw: dict, path: Path) -> Description:
        def get(obj, key, where=""):
            if not isinstance(obj, dict) or key not in obj:
                raise DescriptionError(f"{path}: missing field {where}{key}")
            return obj[key]

        streams = {}
        for name, s in get(raw, "streams").items():
            try:
                layout = PayloadLayout.from_json(get(s, "layout", f"streams.{name}."),
                                                 f"{path}: streams.{name}.layout")
            except LayoutError as exc:
                raise DescriptionError(str(exc)) from None
            streams[name] = StreamPorts(name=name, valid=get(s, "valid", f"streams.{name}."),
                                        ready=s.get("ready"),
                                        payload=get(s, "payload", f"streams.{name}."),
                                        layout=layout)
        for needed in ("i", "o"):
            if needed not in streams:
                raise DescriptionError(f"{path}: streams has no {needed!r} stream")
        if streams["i"].ready is None or streams["o"].ready is None:
            raise DescriptionError(f"{path}: streams i and o need a ready port")
        inp = get(raw, "input")
        field_names = streams["i"].layout.names
        input_field = inp.get("field", field_names[0] if field_names else "")
        if input_field not in field_names or streams["i"].layout[input_field].count is None \
                or len(field_names) != 1:
            raise DescriptionError(f"{path}: the input payload must be one array field "
                                   f"(input.field {input_field!r}), found {list(field_names)}")
        folding = [(int(get(f, "simd", "folding[].")), int(get(f, "pe", "folding[].")))
                   for f in get(raw, "folding")]
        cycles = get(raw, "cycles")
        verilog = path.parent / get(raw, "verilog")
        manifest = raw.get("manifest_sha256")
        if manifest is not None:
            try:
                manifest = Sha256.parse(manifest)
            except ValueError as exc:
                raise DescriptionError(f"{path}: manifest_sha256: {exc}") from None
        return cls(
            path=path, raw=raw, top=get(raw, "top"), clock=get(raw, "clock"),
            reset=get(raw, "reset"), verilog=verilog, streams=streams,
            input_kind=get(inp, "kind", "input."), lanes=int(get(inp, "lanes", "input.")),
            beats_per_sample=int(get(inp, "beats_per_sample", "input.")),
            rows=int(get(inp, "rows", "input.")), inputs=int(get(inp, "inputs", "input.")),
            shape=_shape(inp.get("shape"), path),
            input_field=input_field, folding=folding,
            ideal_cycles=int(get(cycles, "ideal_per_sample", "cycles.")),
            latency_bound=int(cycles.get("latency_bound") or 0) or 4 * int(
                get(cycles, "ideal_per_sample", "cycles.")) + 200,
            manifest_sha256=manifest)

    def check_artifact(self, artifact, artifact_dir=None) -> None:
        """Raise DescriptionError unless this description was generated for ``artifact``
        (``artifact_dir``, where it was loaded from, only names it in the message)."""
        from sw.artifact import manifest_digest

        if artifact.inputs != self.inputs:
            raise DescriptionError(f"{self.path}: built for {self.inputs} inputs, the artifact "
                                   f"has {artifact.inputs}")
        if len(self.folding) != len(artifact.weighted_layers):
            raise DescriptionError(f"{self.path}: folding for {len(self.folding)} layers, the "
                                   f"artifact has {len(artifact.weighted_layers)} with weights")
        if self.shape != artifact.in_shape:
            raise DescriptionError(f"{self.path}: built for the input map {self.shape}, the "
                                   f"artifact's is {artifact.in_shape}")
        if self.manifest_sha256 is not None:
            digest = manifest_digest(artifact)
            if digest != self.manifest_sha256:
                where = "the artifact" if artifact_dir is None else str(artifact_dir)
                raise DescriptionError(f"{self.path}: generated from another artifact (manifest "
                                       f"hash {self.manifest_sha256}, {where} has {digest})")

    def pack_input(self, sample) -> list[int]:
        """The input beats of one sample (``(N,)`` values or ``(T, N)`` spikes), in
        :func:`hw.interface.sample_beats` order, each packed through the input payload layout."""
        chunks = sample_beats(sample, inputs=self.inputs, rows=self.rows, lanes=self.lanes,
                              shape=self.shape)
        layout = self.input_stream.layout
        beats = [layout.pack({self.input_field: chunk}) for chunk in chunks]
        if len(beats) != self.beats_per_sample:
            raise DescriptionError(f"{self.path}: {len(beats)} beats per sample from the input "
                                   f"format, the description says {self.beats_per_sample}")
        return beats
