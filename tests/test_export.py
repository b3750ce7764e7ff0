"""Export: folding a float model into the integer artifact, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sw.artifact import InputSpec, load_artifact, manifest_digest
from sw.data import DatasetInfo
from sw.digest import Sha256
from sw.export import (
    ExportError,
    build_artifact,
    check_deployable,
    export,
    float_spikes,
    fold_model,
)
from sw.golden import GoldenModel
from sw.models import build_model
from sw.train import TrainConfig, train

torch.set_num_threads(1)

BITS = 3
INFO = DatasetInfo("toy", "multibit", BITS, (1, 2, 3), 4)


def hand_built(rng, *, reset, gate, hidden=(7,)):
    """A float model whose folding is exact: dyadic scales, shifts and gate gains, BN eps 0,
    no leak. Neuron 0 has a negative scale (row negated), neuron 1 a zero scale (c = 0)."""
    agmm = dict(stat="batch", alpha="learned") if gate else None
    model = build_model("mlp", INFO, time_steps=4, hidden=hidden, reset=reset, leak_shift=None,
                        threshold=1.0, agmm=agmm, bn_eps=0.0).double()
    with torch.no_grad():
        for k, block in enumerate(model.blocks):
            m, n = block.synapse.weight.shape
            block.synapse.weight.copy_(torch.tensor(rng.choice([-0.5, 0.5], size=(m, n))))
            bn = block.norm
            bn.running_var.fill_(4.0)  # sqrt = 2, exact
            bn.running_mean.copy_(torch.tensor(rng.integers(-8, 9, size=m) / 4.0))
            gamma = rng.choice([0.5, 1.0, 2.0, 4.0], size=m) * rng.choice([-1, 1], size=m)
            if k == 0:
                gamma[0] = -abs(gamma[0])
                gamma[1] = 0.0
            bn.weight.copy_(torch.tensor(gamma))
            bn.bias.copy_(torch.tensor(rng.integers(-16, 17, size=m) / 8.0))
            if block.gate is not None:
                # g[t] = α[t]·σ(0) = G[t]·2^-3: exact, min G = 2 (a power of two)
                block.gate.running_stat.zero_()
                steps = [2, 3, 5, 2]
                block.gate.alpha.copy_(torch.tensor(steps, dtype=torch.float64) / 4)
    model.eval()
    return model


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("gate", [False, True])
def test_hand_built_float_and_integer_agree_exactly(reset, gate, seed):
    rng = np.random.default_rng(seed)
    # A random model whose hidden neurons never (or always) fire would compare nothing: draw
    # again until some do switch (one or two draws in practice).
    for _ in range(20):
        model = hand_built(rng, reset=reset, gate=gate)
        folded = fold_model(model)
        # F = 8 makes every folded bias an integer; Qg = 1 makes G[t]/min G exact (2,3,5,2 -> /2)
        art = build_artifact(folded, input_spec=InputSpec("multibit", BITS), time_steps=4,
                             frac_bits=8, scale_bits=6, gain_bits=1)
        x = rng.integers(0, 2 ** BITS, size=(300, 6))
        x[0], x[1] = 0, 2 ** BITS - 1
        golden = GoldenModel(art).run(x, record=True)
        if 0 < golden.spikes[0].mean() < 1:
            break
    assert 0 < golden.spikes[0].mean() < 1  # the neurons do switch
    assert folded[0].a[1] == 0 and folded[0].a[0] < 0
    fc1, out = art.layers
    assert fc1.connected.tolist()[:2] == [1, 0]
    assert np.array_equal(fc1.weights[0], 1 - folded[0].bits[0])  # negative scale: row negated
    if gate:
        assert fc1.step_gain == (2, 3, 5, 2)
    else:
        assert fc1.step_gain == (1, 1, 1, 1)
    fs = float_spikes(model, x.reshape(-1, *INFO.shape))
    assert np.array_equal(fs[0], golden.spikes[0]), "hidden spikes differ"
    # readout: integer scores are the float logits times one positive constant
    logits = model(torch.tensor(x.reshape(-1, *INFO.shape))).detach().numpy()
    a_max = float(np.max(np.abs(folded[1].a)))
    g_min = float(folded[1].gain.min()) if gate else 1.0
    qg = 1 if gate else 0
    assert np.array_equal(golden.scores, logits / (a_max * g_min) * 2.0 ** (6 + qg))
    assert np.array_equal(golden.predictions, logits.argmax(1))


# Widths and manifest hashes the exporter gave before each layer type owned its widths
# (issue 10): the same artifacts, bit for bit. F = 8 folds the hand-built model exactly; F = 0
# and F = 3 round.
_PINNED = {
    ("hard", False): ([18, 15, 12], [10, 7, 14], [13, 10, 14],
                      "cfc6a1c9957232b8136defce9d18d4e0a0aeb22e33ad3f3bf3cdd563c02e3acb"),
    ("hard", True): ([20, 17, 14], [15, 12, 19], [18, 15, 19],
                     "865150eda52079b059c000da2a64973eb52589dfdea2aaab2c277fcdeac81cf7"),
    ("soft", False): ([18, 15, 12], [10, 7, 14], [13, 10, 14],
                      "a109b13aa0d0d0998213382a5175542ed623b02391cee48a2cd44039289b387a"),
    ("soft", True): ([20, 17, 14], [15, 12, 19], [18, 15, 19],
                     "bdac75165cdd1c2a6cd9f4cb9dbe9abe600b72539d35c2171f6a8b7506c0cada"),
}


@pytest.mark.parametrize("reset,gate", sorted(_PINNED))
def test_exported_widths_and_bytes_are_unchanged(reset, gate):
    model = hand_built(np.random.default_rng(7), reset=reset, gate=gate, hidden=(7, 5))
    folded = fold_model(model)
    spec = InputSpec("multibit", BITS)
    exact, f0, f3, digest = _PINNED[reset, gate]

    def widths(art):
        return [layer.membrane.width for layer in art.lif_layers] + [art.readout.score.width]

    art = build_artifact(folded, input_spec=spec, time_steps=4, frac_bits=8, scale_bits=6,
                         gain_bits=1)
    assert widths(art) == exact
    assert manifest_digest(art).hex == digest
    # exactly at the widths each layer asks for
    assert widths(art) == ([layer.required_width for layer in art.lif_layers]
                           + [art.readout.required_score_width])
    assert widths(build_artifact(folded, input_spec=spec, time_steps=4, frac_bits=0)) == f0
    assert widths(build_artifact(folded, input_spec=spec, time_steps=4, frac_bits=3)) == f3


def test_refusals_name_the_layer_and_what_to_train():
    # (conv models: tests/test_export_conv.py)
    paper = build_model("mlp", INFO, profile="paper")
    with pytest.raises(ExportError, match=r"layer 'fc1' is a full-precision Linear \(profile "
                                          r"'paper'\); .* train --profile hardware to deploy"):
        check_deployable(paper)
    sample = build_model("mlp", INFO, agmm=dict(stat="sample"))
    with pytest.raises(ExportError, match=r"layer 'fc1' has a data-dependent AGMM gate \(stat "
                                          r"'sample'.*--agmm-stat batch, or remove the gate "
                                          r"with --agmm-deploy finetune"):
        check_deployable(sample)
    neg = build_model("mlp", INFO, agmm=dict(stat="batch"))
    with torch.no_grad():
        neg.blocks[0].gate.alpha[2] = -1.0
    with pytest.raises(ExportError, match=r"layer 'fc1': the AGMM gate's inference factor"):
        check_deployable(neg)


def test_build_artifact_parameter_errors():
    model = hand_built(np.random.default_rng(0), reset="hard", gate=False)
    folded = fold_model(model)
    spec = InputSpec("multibit", BITS)
    with pytest.raises(ValueError, match=r"frac_bits must be an int in 0\.\.40, not -1"):
        build_artifact(folded, input_spec=spec, time_steps=4, frac_bits=-1)
    with pytest.raises(ValueError, match=r"scale_bits must be an int in 0\.\.30, not 31"):
        build_artifact(folded, input_spec=spec, time_steps=4, frac_bits=2, scale_bits=31)
    with pytest.raises(ValueError, match=r"frac_bits must be 'auto' or an int in 0\.\.40, "
                                         r"not 'x'"):
        export("nowhere", frac_bits="x")


@pytest.mark.parametrize("dataset,deploy", [("digits", "keep"), ("digits-events", "finetune")])
def test_export_trained_checkpoint(tmp_path, dataset, deploy):
    # a kept gate exports as step gains; a fine-tuned-away one as G = 1
    cfg = TrainConfig(dataset=dataset, epochs=2, hidden=(32,), seed=1, agmm_deploy=deploy,
                      finetune_epochs=1)
    run = train(cfg, tmp_path / "run", progress=False)
    art, rep = export(run / "checkpoint.pt", tmp_path / "art")
    loaded = load_artifact(tmp_path / "art")
    assert loaded.summary() == art.summary()
    md = loaded.metadata
    for key in ("dataset", "model", "profile", "time_steps", "float_accuracy",
                "integer_accuracy", "training", "agmm", "checkpoint_sha256"):
        assert key in md, key
    assert md["dataset"] == dataset and md["time_steps"] == 4
    gains = [layer.step_gain for layer in loaded.layers]
    if deploy == "finetune":
        assert md["gate_removed"] and all(g == (1, 1, 1, 1) for g in gains)
    else:
        assert not md["gate_removed"] and all(min(g) == 16 for g in gains)  # Qg = 4
    assert md["float_accuracy"] == round(rep.float_accuracy, 6)
    assert md["training"] == json.loads((run / "config.json").read_text())
    assert md["checkpoint_sha256"].startswith("sha256:")
    assert Sha256.parse(md["checkpoint_sha256"]) == rep.checkpoint_sha256
    assert rep.checkpoint_sha256 == Sha256.of_file(run / "checkpoint.pt")
    expected_kind = "multibit" if dataset == "digits" else "spike"
    assert loaded.input.kind == expected_kind
    # the reported integer accuracy is what the golden model computes on the test split
    from sw.train import load_data

    data = load_data(cfg)
    pred = GoldenModel(loaded).run(data.test.flat()).predictions
    assert np.mean(pred == data.test.y) == pytest.approx(rep.integer_accuracy, abs=0)
    assert rep.float_accuracy > 0.5 and abs(rep.float_accuracy - rep.integer_accuracy) < 0.05
    # a run directory is accepted too; an existing artifact is not replaced without overwrite
    with pytest.raises(FileExistsError):
        export(run, tmp_path / "art", frac_bits=rep.frac_bits)


def test_export_cli_refuses_a_missing_checkpoint(tmp_path, capsys):
    from bitspike.cli import main

    assert main(["export", str(tmp_path / "nothing"), "-o", str(tmp_path / "b")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_nearly_zero_scale_clips_threshold_or_refuses():
    from sw.export import FoldedLayer

    def layers(b0):
        return [FoldedLayer("fc1", np.ones((2, 3), np.uint8), np.array([1e-30, 1.0]),
                            np.array([b0, 0.1]), np.ones(4), False, 1.0, None, "hard"),
                FoldedLayer("out", np.ones((2, 2), np.uint8), np.array([1.0, 0.5]),
                            np.zeros(2), np.ones(4), False)]

    spec = InputSpec("multibit", 3)
    art = build_artifact(layers(0.0), input_spec=spec, time_steps=4, frac_bits=4)
    fc1 = art.layers[0]
    # θ/a is ~1e31: clipped to one above the proven bound, so it still never fires
    assert fc1.threshold[0] == fc1.membrane_bound + 1
    assert fc1.membrane.width == fc1.required_width <= 16
    x = np.full((1, 3), 7)
    assert GoldenModel(art).run(x).spikes[0][0, :, 0].sum() == 0
    with pytest.raises(ExportError, match=r"layer 'fc1', neuron 0: the folded bias 8e\+31 "
                                          r"\(b = 5 over a nearly zero scale a = 1e-30\) does "
                                          r"not fit 62 bits"):
        build_artifact(layers(5.0), input_spec=spec, time_steps=4, frac_bits=4)


def test_export_cli_refuses_an_unfinished_run_without_force(tmp_path, capsys):
    """A run stopped after 1 of its 2 + 1 epochs, gate still in: refused in one line saying
    what is missing and that --force exports anyway; --force exports with a warning; the
    finished run exports without it."""
    from bitspike.cli import main

    cfg = TrainConfig(epochs=2, finetune_epochs=1, hidden=(16,), seed=2)
    run = train(cfg, tmp_path / "run", stop_after=1, progress=False)
    capsys.readouterr()
    assert main(["export", str(run), "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {run / 'checkpoint.pt'} is an unfinished run (1 of 3 epochs "
                   f"trained: 2 + 1 gate-free fine-tune; the AGMM gate is not removed yet (the "
                   f"config removes it with the fine-tune)); resume it with bitspike train -o "
                   f"RUN --resume, or pass --force to export it anyway\n")
    assert not (tmp_path / "a").exists()
    assert main(["export", str(run), "-o", str(tmp_path / "a"), "--force"]) == 0
    assert "WARNING: exporting an unfinished run (1 of 3 epochs" in capsys.readouterr().err
    assert load_artifact(tmp_path / "a").metadata["epochs_trained"] == 1
    train(None, run, resume=True, progress=False)
    assert main(["export", str(run), "-o", str(tmp_path / "b")]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_unfinished_names_a_gate_left_in_a_run_that_ran_its_epochs():
    # a checkpoint whose epoch count is complete but whose gate was not removed (an older or
    # hand-made checkpoint): the gate alone is what is unfinished
    from sw.export import unfinished

    cfg = TrainConfig(epochs=2, finetune_epochs=1)
    assert unfinished({"config": cfg.to_json(), "epoch": 3, "gates_removed": True}) is None
    assert unfinished({"config": cfg.to_json(), "epoch": 3, "gates_removed": False}) == (
        "the AGMM gate is not removed yet (the config removes it with the fine-tune)")
    kept = cfg.replace(agmm_deploy="keep")
    assert unfinished({"config": kept.to_json(), "epoch": 2, "gates_removed": False}) is None
    assert unfinished({"config": kept.to_json(), "epoch": 1}) == "1 of 2 epochs trained"
