"""Small numpy helpers of the data layer: one-hot encoding, the data folder, balanced class indices.

The original ``dl_utils`` names ``get_rand_state``, ``maybe_call``, ``as_list``, ``as_tuple_or_list``
and ``merge_dicts`` are importable from here; they are defined once in :mod:`boml.helpers`.
Nothing here imports TensorFlow.
"""
import os

import numpy as np

from boml.errors import DataError, InvalidArgumentError
from boml.helpers import as_list, as_tuple_or_list, get_rand_state, maybe_call, merge_dicts
from boml.load_data.datasets.locations import DATASETS_FOLDER_ENV, default_datasets_folder

__all__ = [
    "DATASETS_FOLDER_ENV",
    "get_rand_state",
    "to_one_hot_enc",
    "datasets_folder",
    "maybe_call",
    "as_list",
    "as_tuple_or_list",
    "merge_dicts",
    "test_if_balanced",
    "get_indices_balanced_classes",
]


def to_one_hot_enc(seq, dimension=None):
    """One-hot encodes a sequence of non-negative integer labels as float32 ``(n, dimension)``.

    ``dimension`` defaults to ``max(seq) + 1``.
    """
    seq = np.asarray(seq)
    if seq.ndim != 1:
        seq = seq.reshape(-1)
    if seq.size and not np.issubdtype(seq.dtype, np.integer):
        if not np.all(np.equal(np.mod(seq, 1), 0)):
            raise InvalidArgumentError(
                f"to_one_hot_enc needs integer labels; got dtype {seq.dtype} with non-integer values. "
                "Pass class indices 0..dimension-1."
            )
    seq = seq.astype(np.int64)
    if seq.size and seq.min() < 0:
        raise InvalidArgumentError(
            f"to_one_hot_enc needs non-negative labels; got minimum {seq.min()}. Pass class indices 0..dimension-1."
        )
    if dimension is None:
        dimension = int(seq.max()) + 1 if seq.size else 0
    dimension = int(dimension)
    if seq.size and seq.max() >= dimension:
        raise InvalidArgumentError(
            f"to_one_hot_enc: label {seq.max()} does not fit dimension {dimension}. "
            "Pass a larger dimension or labels below it."
        )
    out = np.zeros((seq.shape[0], dimension), dtype=np.float32)
    out[np.arange(seq.shape[0]), seq] = 1.0
    return out


def datasets_folder(*subfolders):
    """The datasets folder, read from ``$DATASETS_FOLDER`` at call time (default ``~/.boml/datasets``).

    Extra arguments are joined to it, e.g. ``datasets_folder("omniglot")``.
    """
    return os.path.join(default_datasets_folder(), *subfolders)


def _labels_of(target):
    target = np.asarray(target)
    return np.argmax(target, axis=1) if target.ndim == 2 else target.astype(np.int64)


def test_if_balanced(dataset):
    """True if every class appears equally often in ``dataset`` (one-hot or integer targets)."""
    counts = np.bincount(_labels_of(dataset.target))
    counts = counts[counts > 0]
    return bool(counts.size == 0 or np.all(counts == counts[0]))


# pytest must not collect the helper above as a test
test_if_balanced.__test__ = False


def get_indices_balanced_classes(n_examples, labels, rand=None):
    """Indices of ``n_examples`` examples with (as far as possible) equally many per class.

    Classes are visited in a random order; each gets ``n_examples // n_classes`` examples and
    the first ``n_examples % n_classes`` get one more. Raises ``DataError`` if a class is too small.
    """
    rand = get_rand_state(rand)
    labels = _labels_of(labels)
    classes = np.unique(labels)
    if classes.size == 0:
        raise DataError("get_indices_balanced_classes: no labels given. Pass a non-empty label array.")
    per, extra = divmod(int(n_examples), classes.size)
    order = rand.permutation(classes)
    out = []
    for i, c in enumerate(order):
        k = per + (1 if i < extra else 0)
        pool = np.flatnonzero(labels == c)
        if k > pool.size:
            raise DataError(
                f"get_indices_balanced_classes: class {c} has {pool.size} examples, {k} requested. "
                "Ask for fewer examples."
            )
        out.append(rand.choice(pool, k, replace=False))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)
