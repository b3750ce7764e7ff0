"""Datasets as integer numpy arrays, read from local files only (nothing is downloaded).

Every loader returns a :class:`Dataset` whose ``x`` arrays are what the integer model takes:

* ``input_kind == "multibit"``: unsigned integers of ``input_bits`` bits, shape ``(n, C, H, W)``
  (the same value at every time step: direct encoding);
* ``input_kind == "spike"``: {0, 1} frames, shape ``(n, T, C, H, W)``; event datasets have
  ``C = 2`` (channel 0 OFF events, channel 1 ON events).

A network flattens one sample (or one frame) in row-major ``(C, H, W)`` order; that order is the
input index ``i`` of the artifact. The registry :data:`DATASETS` maps a name to its loader; the
options every loader takes are :class:`DatasetOptions` (``docs/datasets.md`` describes each
dataset, its on-disk layout and the options).
"""

from __future__ import annotations

from sw.data import digits as _digits
from sw.data import images as _images
from sw.data import neuromorphic as _neuro
from sw.data.base import Dataset, DatasetError, DatasetInfo, DatasetOptions, DatasetSpec, Split

__all__ = ["DatasetInfo", "Split", "Dataset", "DATASETS", "load_dataset", "load_digits",
           "DatasetError", "DatasetOptions", "DatasetSpec"]


#: name -> loader(**options) -> Dataset. Each entry is a :class:`DatasetSpec` (callable, with a
#: one-line summary and the on-disk layout it expects); options are those of
#: :class:`DatasetOptions`, and a loader ignores those that do not apply to it.
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("digits", "scikit-learn's bundled 8x8 digits, 5-bit pixels (built in)",
                None, _digits.load_digits),
    DatasetSpec("digits-events", "the digits through a simulated DVS saccade, ON/OFF frames "
                "(built in)", None, _digits.load_digits_events),
    DatasetSpec("mnist", "MNIST handwritten digits, 28x28 8-bit (IDX files)",
                _images.MNIST_LAYOUT, _images.load_mnist),
    DatasetSpec("fashion-mnist", "Fashion-MNIST clothing images, 28x28 8-bit (IDX files)",
                _images.FASHION_MNIST_LAYOUT, _images.load_fashion_mnist),
    DatasetSpec("cifar10", "CIFAR-10 colour images, 3x32x32 8-bit (python or binary batches)",
                _images.CIFAR10_LAYOUT, _images.load_cifar10),
    DatasetSpec("nmnist", "N-MNIST saccade recordings, 34x34 ON/OFF events (.bin files)",
                _neuro.NMNIST_LAYOUT, _neuro.load_nmnist),
    DatasetSpec("dvs-gesture", "IBM DVS128 Gesture, 11 classes, 128x128 events (AEDAT 3.1)",
                _neuro.DVS_GESTURE_LAYOUT, _neuro.load_dvs_gesture),
    DatasetSpec("cifar10-dvs", "CIFAR10-DVS, 128x128 events of moving CIFAR-10 images "
                "(AEDAT 2.0)", _neuro.CIFAR10_DVS_LAYOUT, _neuro.load_cifar10_dvs),
)}


def load_dataset(name: str, **options) -> Dataset:
    """Load a dataset by registry name; see :data:`DATASETS` and :class:`DatasetOptions`.

    Raises
    ------
    DatasetError
        Unknown name, or files missing / malformed (the message shows the expected layout).
    TypeError, ValueError
        An unknown option name, or an option of the wrong type or range.
    """
    try:
        spec = DATASETS[name]
    except (KeyError, TypeError):
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}"
                           ) from None
    return spec(**options)


def load_digits(**options) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16, 5 bits).

    The train/test split is stratified and fixed by ``seed`` (default 0: 1347 / 450 images).
    """
    return DATASETS["digits"](**options)
