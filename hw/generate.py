"""Verilog, memory init files and the JSON description of an accelerator.

:func:`generate` writes, into one directory:

* ``<top>.v``: the whole accelerator (Amaranth's Verilog backend; memory contents are in it,
  as ``initial`` blocks);
* one ``$readmemh`` file per initialised memory (weights and neuron/class parameters of every
  layer), for vendor flows that load memories from files;
* ``accelerator.json``: the description other tools read (ports, stream payload layouts,
  folding, cycle bound, memories, the artifact's manifest hash). docs/hardware.md documents
  every field.

Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import re
from pathlib import Path

from hw.accelerator import Accelerator
from hw.common import layout_json
from hw.interface import DESCRIPTION_FILE
from hw.plan import DEFAULT_BUDGET, stage_groups
from sw.artifact import Artifact, manifest_digest
from sw.atomic import atomic_write_json, atomic_write_text
from sw.digest import Sha256
from sw.folding import words_to_hex_lines

__all__ = ["DESCRIPTION_FILE", "DESCRIPTION_SCHEMA", "LINT_WAIVERS", "top_ports", "port_list",
           "describe", "generate"]

#: Verilator ``-Wall`` warnings the generated Verilog raises, and why each is harmless
#: (docs/hardware.md). Anything else is a defect.
LINT_WAIVERS = {
    "UNUSEDSIGNAL": "Amaranth names every field of a payload view and Yosys keeps expression "
                    "temporaries of which only some bits are used; also the padding lanes and "
                    "unused high bits of memory words",
    "WIDTHEXPAND": "Yosys writes additions and comparisons on operands of different widths; "
                   "Verilog zero/sign-extends them as the Amaranth semantics require",
    "WIDTHTRUNC": "logical NOT of a multi-bit counter (`!plane`, a test for zero) and shifts "
                  "whose result is narrower than the shifted word; both are what is meant",
    "PROCASSINIT": "registers carry their reset value as an initial value (`reg x = 0`), the "
                   "power-up state FPGAs load; the synchronous reset sets the same values",
    "ASCRANGE": "zero-width signals (a counter over one value, `wire [-1:0]`) that Amaranth "
                "still declares; nothing reads them",
    "DECLFILENAME": "submodules are named `<top>.<block>` in the one file `<top>.v`",
}

DESCRIPTION_SCHEMA = "bitspike-hw"
DESCRIPTION_VERSION = 1
_TOP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _port_members(component):
    """``(port name, value, flow)`` of every port of a component's signature; constant members
    (the ``ready`` of an ``always_ready`` stream) are not ports."""
    from amaranth.hdl import Const, ValueCastable

    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Const):
            yield "__".join(map(str, path)), value, member.flow


def top_ports(component) -> dict:
    """``{port name: (signal, None)}`` of a component's signature, the ``ports`` that
    :func:`amaranth.back.verilog.convert` takes (its own default would make the constant
    members ports, which it refuses). The direction None lets the converter infer it: an input
    is a signal the design does not drive; :func:`generate` checks that the Verilog's port
    directions are the signature's."""
    return {name: (value, None) for name, value, _ in _port_members(component)}


def port_list(component) -> list[dict]:
    """The ``ports`` of the description: clock, reset and every signature port, with its
    direction (``"in"``/``"out"``, from the signature) and width."""
    from amaranth.lib import wiring

    ports = [{"name": "clk", "direction": "in", "width": 1},
             {"name": "rst", "direction": "in", "width": 1}]
    for name, value, flow in _port_members(component):
        ports.append({"name": name, "direction": "in" if flow == wiring.In else "out",
                      "width": len(value)})
    return ports


_PORT_RE = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[\d+:\d+\]\s+)?"
                      r"\\?([A-Za-z_][A-Za-z0-9_$]*)\s*;", re.M)


def _check_port_directions(verilog_text: str, top: str, ports: list[dict]) -> None:
    """Raise ValueError unless the top module of ``verilog_text`` declares exactly ``ports``,
    each in its direction (the converter infers directions from what the design drives)."""
    start = verilog_text.find(f"module {top}(")
    body = verilog_text[start:verilog_text.index("endmodule", start)] if start >= 0 else ""
    found = {name: "in" if kind == "input" else "out" for kind, name in _PORT_RE.findall(body)}
    want = {p["name"]: p["direction"] for p in ports}
    if found != want:
        wrong = sorted(set(found.items()) ^ set(want.items()))
        raise ValueError(f"the Verilog of {top} does not declare the signature's ports "
                         f"(differing: {wrong})")


def _memories(acc: Accelerator, top: str) -> list[dict]:
    """Every initialised memory: its instance path, Verilog module and array name, size, init
    file, layout."""
    mems = []
    for (layer, _), f, stage in zip(acc.stage_layers, acc.folding.layers, acc.stages,
                                    strict=True):
        module = f"stage_{layer.name}"
        mems.append({
            "name": f"{layer.name}.weights", "instance": module,
            "module": f"{top}.{module}", "memory": "weights",
            "depth": len(stage.weight_words), "width": f.word_width,
            "file": f"{layer.name}.weights.{f}.mem", "words": stage.weight_words,
            "contents": "weights, sw.folding.pack_weights layout: word nf*SF+sf, bit p*SIMD+s "
                        "= weight of neuron nf*PE+p for input sf*SIMD+s (1 = +1)",
        })
        if layer.kind in ("lif", "conv"):
            words, layout = stage.rom_words, stage.rom_layout
            module_p, memory_p = module, "params"
            text = ("per neuron group (conv: channel group): bias[PE], threshold[PE] "
                    "(signed, membrane width), connected (PE bits); padding lanes never fire")
        else:
            words, layout = stage.unit.rom_words, stage.unit.rom_layout
            module_p, memory_p = f"{module}.unit", "rom"
            text = "per class group: scale[PE] (A_j, unsigned), offset[PE] (C_j, signed)"
        mems.append({
            "name": f"{layer.name}.params", "instance": module_p,
            "module": f"{top}.{module_p}", "memory": memory_p,
            "depth": len(words), "width": layout.size,
            "file": f"{layer.name}.params.{f}.mem", "words": words,
            "contents": text, "layout": layout_json(layout),
        })
    return mems


def describe(acc: Accelerator, top: str = "bitspike_accel", *,
             manifest_hash: Sha256 | None = None) -> dict:
    """The JSON description of ``acc`` (without the memory words); ``manifest_hash`` is the
    artifact's (:func:`sw.artifact.manifest_digest`), None when not known."""
    if manifest_hash is not None and not isinstance(manifest_hash, Sha256):
        raise TypeError(f"manifest_hash must be a sw.digest.Sha256 or None, not "
                        f"{manifest_hash!r}")
    a, plan = acc.artifact, acc.plan

    def stream_desc(name, layout, direction, always_ready=False, **extra):
        return {"direction": direction, "valid": f"{name}__valid",
                "ready": None if always_ready else f"{name}__ready",
                "payload": f"{name}__payload", "always_ready": always_ready,
                "layout": layout_json(layout), **extra}

    rows = a.rows_per_sample
    streams = {
        "i": stream_desc("i", acc.adapter.layout, "in",
                         order="values[k] of beat b is input b*lanes+k of the row; rows "
                               "(time steps, spike input) one after the other; the last "
                               "beat of a row zero-padded"),
        "o": stream_desc("o", acc.stages[-1].result_layout, "out",
                         order="one beat per input sample, in input order"),
    }
    if acc.trace:
        for (layer, pool), f, stage in zip(acc.stage_layers, acc.folding.layers, acc.stages,
                                           strict=True):
            nf = f.neuron_folds(layer)
            if layer.kind == "conv":
                groups = stage_groups(layer, f, pool)
                extra = {"beats_per_sample": groups * a.time_steps,
                         "order": "issue order (hw.plan.issue_groups): for each group, time "
                                  "steps 0..T-1; group g is the layer's neurons g*PE+p in "
                                  "element order"}
            elif layer.kind == "lif":
                extra = {"beats_per_sample": nf * a.time_steps,
                         "order": "group-major: for group g, time steps 0..T-1; lane p is "
                                  "neuron g*PE+p (lanes past the last neuron: padding)"}
            else:
                extra = {"beats_per_sample": nf,
                         "order": "one beat per class group, groups in order; lane p is "
                                  "class g*PE+p (lanes past the last class: padding)"}
            streams[f"trace_{layer.name}"] = stream_desc(
                f"trace_{layer.name}", stage.trace_layout, "out", always_ready=True,
                layer=layer.name, pe=f.pe, **extra)
            if pool is not None:
                streams[f"trace_{pool.name}"] = stream_desc(
                    f"trace_{pool.name}", stage.pool_trace_layout, "out", always_ready=True,
                    layer=pool.name, pe=f.pe,
                    beats_per_sample=pool.neurons // f.pe * a.time_steps,
                    order="group-major: for pooled group g, time steps 0..T-1; lane p is "
                          "output g*PE+p (element order)")

    layers = []
    for k, ((layer, pool), f) in enumerate(zip(acc.stage_layers, acc.folding.layers,
                                               strict=True)):
        item = {"name": layer.name, "kind": layer.kind, "inputs": layer.inputs,
                "neurons": layer.neurons, "input": layer.input.to_json(),
                "simd": f.simd, "pe": f.pe, "synapse_folds": f.synapse_folds(layer),
                "neuron_folds": f.neuron_folds(layer),
                "cycles_per_sample": plan.stage_cycles[k],
                "latency": plan.stage_latency[k],
                "weight_memory_bits": f.depth(layer) * f.word_width}
        if layer.kind == "conv":
            item.update(in_shape=list(layer.in_shape), out_shape=list(layer.out_shape),
                        kernel=layer.kernel, stride=layer.stride, padding=layer.padding,
                        pool=None if pool is None else {"name": pool.name,
                                                        "kernel": pool.kernel,
                                                        "out_shape": list(pool.out_shape)})
        if layer.kind in ("lif", "conv"):
            item.update(membrane_width=layer.membrane.width, frac=layer.membrane.frac,
                        leak_shift=layer.leak_shift, reset=layer.reset)
        else:
            item.update(score_width=layer.score.width)
        layers.append(item)

    buffers = []
    for k, buf in enumerate(acc.buffers):
        after = acc.stage_layers[k - 1] if k else None
        buffers.append({"before": acc.stage_layers[k][0].name,
                        "after": "input" if k == 0 else (after[1] or after[0]).name,
                        "slots": plan.slots[k], "word_width": buf.word_width,
                        "depth": buf.depth, "bits": buf.storage_bits})

    ideal = plan.ideal_cycles
    latency = first_sample_latency(acc)
    in_flight = sum(plan.slots) + plan.out_depth
    return {
        "schema": DESCRIPTION_SCHEMA,
        "schema_version": DESCRIPTION_VERSION,
        "top": top,
        "verilog": f"{top}.v",
        "clock": "clk",
        "reset": "rst",
        "reset_kind": "synchronous, active high",
        "manifest_sha256": None if manifest_hash is None else str(manifest_hash),
        "artifact_summary": a.summary(),
        "ports": port_list(acc),
        "streams": streams,
        "input": {"kind": a.input.kind, "bits": a.input.bits, "inputs": a.inputs,
                  "time_steps": a.time_steps, "lanes": plan.lanes, "rows": rows,
                  "shape": None if a.in_shape is None else list(a.in_shape),
                  "beats_per_row": plan.beats // rows, "beats_per_sample": plan.beats,
                  "cycles_per_beat": plan.input_cycles // plan.beats,
                  "field": "values"},
        "output": {"classes": a.classes, "score_width": a.readout.score.width,
                   "prediction_width": len(acc.o.payload.prediction)},
        "folding": [{"layer": la["name"], "simd": la["simd"], "pe": la["pe"]}
                    for la in layers],
        "layers": layers,
        "buffers": buffers,
        "cycles": {
            "ideal_per_sample": ideal,
            "bound": "max(input cycles per sample, every stage's cycles per sample)",
            "input_beats": plan.beats,
            "input_cycles": plan.input_cycles,
            "stages": list(plan.stage_cycles),
            "bottleneck": plan.bottleneck,
            "latency": latency,
            "latency_bound": latency + in_flight * ideal,
        },
        "options": {"lanes": plan.lanes, "trace": acc.trace, "slots": list(plan.slots),
                    "popcount_stages": plan.popcount_stages, "out_depth": plan.out_depth,
                    "weight_memory": acc.weight_memory,
                    "memory_register": acc.memory_register},
        "memories": [{k: v for k, v in mem.items() if k != "words"}
                     for mem in _memories(acc, top)],
    }


def first_sample_latency(acc: Accelerator) -> int:
    """Cycles from the transfer of a sample's first input beat to its output beat on ``o``
    (:attr:`hw.plan.Plan.first_sample_latency` of the accelerator's plan)."""
    return acc.plan.first_sample_latency


def generate(artifact: Artifact, folding=None, out_dir=".", *, top: str = "bitspike_accel",
             lanes: int | None = None, trace: bool = False, slots: int | None = None,
             popcount_stages: int = 3, out_depth: int | None = None,
             budget: int = DEFAULT_BUDGET, weight_memory: str = "auto",
             memory_register: bool = True, progress=None) -> dict:
    """Write the accelerator's Verilog, memory files and description into ``out_dir``.

    Parameters
    ----------
    artifact : Artifact
    folding : Folding or None
        Per-layer SIMD x PE (default: :func:`hw.plan.default_folding`).
    out_dir : path
        Created if missing.
    top : str
        Name of the top Verilog module (an identifier).
    lanes, trace, slots, popcount_stages, out_depth, budget, weight_memory, memory_register
        :class:`hw.Accelerator` options.
    progress : callable or None
        Called with a short step name before each step (for a progress bar).

    Returns
    -------
    dict
        The description, as written to ``accelerator.json``.
    """
    if not isinstance(top, str) or not _TOP_RE.match(top):
        raise ValueError(f"top must be a Verilog identifier (letters, digits, '_'), "
                         f"not {top!r}")
    from amaranth.back import verilog

    step = progress or (lambda name: None)
    step("elaborate")
    acc = Accelerator(artifact, folding, lanes=lanes, trace=trace, slots=slots,
                      popcount_stages=popcount_stages, out_depth=out_depth, budget=budget,
                      weight_memory=weight_memory, memory_register=memory_register)
    desc = describe(acc, top, manifest_hash=manifest_digest(artifact))
    memories = _memories(acc, top)
    step("verilog")
    text = verilog.convert(acc, name=top, ports=top_ports(acc), emit_src=False)
    _check_port_directions(text, top, desc["ports"])
    step("write")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / desc["verilog"], text)
    for mem in memories:
        atomic_write_text(out / mem["file"],
                      "\n".join(words_to_hex_lines(mem["words"], mem["width"])) + "\n")
    atomic_write_json(out / DESCRIPTION_FILE, desc)
    return desc
