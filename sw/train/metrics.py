"""Training measurements: weight sign flips and firing rates.

Sign-flip rate (docs/training.md): for a layer with n binary weights, the fraction of them whose
sign (``w >= 0``) differs after an optimizer step from before it; the epoch's rate is the mean of
that fraction over the epoch's optimizer steps.
"""

from __future__ import annotations

import torch

from sw.nn import LIF

__all__ = ["FlipCounter", "SpikeMonitor"]


class FlipCounter:
    """Counts sign flips of the latent weights of binary synapses across optimizer steps.

    Usage: ``before()`` just before ``optimizer.step()``, ``after()`` just after; ``rates()``
    returns ``{layer: mean fraction flipped per step}`` since the last ``reset()``.
    """

    def __init__(self, synapses: dict):
        self.synapses = dict(synapses)
        self.reset()

    def reset(self):
        self._sum = {name: 0.0 for name in self.synapses}
        self._steps = 0
        self._signs = None

    @torch.no_grad()
    def before(self):
        self._signs = {name: s.weight >= 0 for name, s in self.synapses.items()}

    @torch.no_grad()
    def after(self):
        if self._signs is None:
            raise RuntimeError("FlipCounter.after() called without before()")
        for name, s in self.synapses.items():
            changed = (s.weight >= 0) != self._signs[name]
            self._sum[name] += float(changed.float().mean())
        self._steps += 1
        self._signs = None

    def rates(self) -> dict:
        return {name: (v / self._steps if self._steps else 0.0) for name, v in self._sum.items()}


class SpikeMonitor:
    """Accumulates the firing rate (spikes per neuron per time step) of every LIF module of a
    model while active (a context manager registering forward hooks)."""

    def __init__(self, model, names: list[str]):
        self.model = model
        self.neurons = {name: m for name, m in zip(names, model.neurons, strict=False)
                        if isinstance(m, LIF)}
        self._spikes = {name: 0.0 for name in self.neurons}
        self._count = {name: 0 for name in self.neurons}
        self._handles = []

    def __enter__(self):
        for name, m in self.neurons.items():
            self._handles.append(m.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name):
        def hook(module, inputs, output):
            self._spikes[name] += float(output.detach().sum())
            self._count[name] += output.numel()
        return hook

    def rates(self) -> dict:
        return {name: (self._spikes[name] / self._count[name] if self._count[name] else 0.0)
                for name in self.neurons}
