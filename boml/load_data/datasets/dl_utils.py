"""Small numpy helpers of the data layer: random states, one-hot encoding, data folder.

Nothing here imports TensorFlow.
"""
import numbers
import os

import numpy as np

from boml.errors import DataError, InvalidArgumentError
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


def get_rand_state(rand=None):
    """Returns a ``np.random.RandomState`` built from ``rand``.

    ``None`` gives a fresh, unseeded state; an integer gives ``RandomState(rand)``; a
    ``RandomState`` is returned as is (so that it keeps advancing across calls).
    """
    if rand is None:
        return np.random.RandomState()
    if isinstance(rand, np.random.RandomState):
        return rand
    if isinstance(rand, numbers.Integral) and not isinstance(rand, bool):
        if rand < 0:
            raise InvalidArgumentError(
                f"rand must be a non-negative seed; got {rand!r}. "
                "Pass None, an int >= 0 or a numpy.random.RandomState."
            )
        return np.random.RandomState(int(rand))
    raise InvalidArgumentError(
        f"rand must be None, an int seed or a numpy.random.RandomState; got {rand!r} "
        f"(type {type(rand).__name__}). Pass one of those."
    )


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


def maybe_call(obj, *args, **kwargs):
    """Calls ``obj(*args, **kwargs)`` if it is callable, else returns ``obj``."""
    if callable(obj):
        return obj(*args, **kwargs)
    return obj


def as_list(obj):
    """Wraps a non-list in a list; ``None`` gives ``[]``; tuples become lists."""
    if obj is None:
        return []
    if isinstance(obj, list):
        return obj
    if isinstance(obj, tuple):
        return list(obj)
    return [obj]


def as_tuple_or_list(obj):
    """Returns tuples and lists unchanged; wraps anything else in a 1-tuple."""
    return obj if isinstance(obj, (list, tuple)) else (obj,)


def merge_dicts(*dicts):
    """Merges dictionaries left to right into a new dict (``None`` entries are skipped)."""
    out = {}
    for d in dicts:
        if d:
            out.update(d)
    return out


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
