"""Numpy containers of the data layer.

* :class:`Dataset`: one array of examples with its targets.
* :class:`Datasets`: a ``(train, validation, test)`` triple; an episode is
  ``Datasets(train=support, test=query)``.

Both are importable from :mod:`boml.load_data.datasets.structures`, where the original had them.
Nothing here imports TensorFlow.
"""
import numpy as np

from boml.errors import InvalidArgumentError, ShapeError

__all__ = ["Dataset", "Datasets"]


class Dataset:
    """A set of examples: ``data`` (n, ...) and ``target`` (n,) or (n, d), both numpy arrays.

    Args:
        data: the examples, shape (n, ...).
        target: their targets, shape (n,) or (n, d).
        sample_info: optional per-example list (e.g. dicts with ``name``/``label``).
        info: optional dict of dataset-level information.
        name: optional name (``None`` falls back to ``info.get("_name")``).

    Raises:
        ShapeError: the arrays have no example axis, or ``data``, ``target`` and ``sample_info`` disagree on
            the number of examples.
    """

    def __init__(self, data, target, sample_info=None, info=None, name=None):
        data = np.asarray(data)
        target = np.asarray(target)
        if data.ndim == 0 or target.ndim == 0:
            raise ShapeError(
                f"Dataset needs arrays with a leading example axis; got data shape {data.shape} and "
                f"target shape {target.shape}. Pass arrays of shape (n, ...)."
            )
        if data.shape[0] != target.shape[0]:
            raise ShapeError(
                f"Dataset data and target disagree on the number of examples: data {data.shape}, "
                f"target {target.shape}. Pass the same number of rows."
            )
        if sample_info is not None and len(sample_info) != data.shape[0]:
            raise ShapeError(
                f"Dataset sample_info has {len(sample_info)} entries for {data.shape[0]} examples. "
                "Pass one entry per example or None."
            )
        self._data = data
        self._target = target
        self.sample_info = sample_info
        self.info = dict(info) if info else {}
        self._name = name

    @property
    def data(self):
        return self._data

    @property
    def target(self):
        return self._target

    @property
    def name(self):
        return self._name if self._name is not None else self.info.get("_name")

    @property
    def num_examples(self):
        return int(self._data.shape[0])

    @property
    def dim_data(self):
        """``int`` for vector data (n, d), otherwise the per-example shape tuple."""
        shape = self._data.shape[1:]
        return int(shape[0]) if len(shape) == 1 else tuple(int(s) for s in shape)

    @property
    def dim_target(self):
        """1 for 1-D targets, otherwise the size of the last axis."""
        return 1 if self._target.ndim == 1 else int(self._target.shape[-1])

    @property
    def labels(self):
        """Integer class labels (argmax of one-hot targets)."""
        return np.argmax(self._target, axis=1) if self._target.ndim == 2 else self._target

    def setting(self):
        """A dict describing the dataset (without the arrays)."""
        return {
            "name": self.name,
            "num_examples": self.num_examples,
            "dim_data": self.dim_data,
            "dim_target": self.dim_target,
            "info": self.info,
        }

    @staticmethod
    def stack(*datasets):
        """Concatenates datasets along the example axis (``None`` entries are skipped)."""
        datasets = [d for d in datasets if d is not None]
        if not datasets:
            raise InvalidArgumentError("Dataset.stack needs at least one dataset; got none.")
        infos = [d.sample_info for d in datasets]
        sample_info = None if any(i is None for i in infos) else [x for i in infos for x in i]
        info = {}
        for d in datasets:
            info.update(d.info)
        return Dataset(
            np.concatenate([d.data for d in datasets]),
            np.concatenate([d.target for d in datasets]),
            sample_info=sample_info,
            info=info,
            name=datasets[0].name,
        )

    def __len__(self):
        return self.num_examples

    def __repr__(self):
        return (
            f"Dataset(name={self.name!r}, num_examples={self.num_examples}, dim_data={self.dim_data}, "
            f"dim_target={self.dim_target})"
        )


class Datasets:
    """A ``(train, validation, test)`` triple of datasets (any may be ``None``).

    Indexing follows that order (``ds[0]`` is ``train``); ``len`` counts the non-``None`` parts.
    """

    def __init__(self, train=None, validation=None, test=None):
        self.train = train
        self.validation = validation
        self.test = test

    @property
    def _lst(self):
        return [self.train, self.validation, self.test]

    @staticmethod
    def from_list(list_of_datasets):
        """1 element -> train; 2 -> train, test; 3 -> train, validation, test.

        More than 3 elements: the list is returned unchanged (as the original did).
        """
        lst = list(list_of_datasets)
        if len(lst) == 0:
            raise InvalidArgumentError("Datasets.from_list needs 1 to 3 datasets; got an empty list.")
        if len(lst) == 1:
            return Datasets(train=lst[0])
        if len(lst) == 2:
            return Datasets(train=lst[0], test=lst[1])
        if len(lst) == 3:
            return Datasets(train=lst[0], validation=lst[1], test=lst[2])
        return lst

    @staticmethod
    def stack(*datasets_s):
        """Stacks several ``Datasets`` part by part."""
        def _stack(parts):
            parts = [p for p in parts if p is not None]
            return Dataset.stack(*parts) if parts else None

        return Datasets(
            train=_stack([d.train for d in datasets_s]),
            validation=_stack([d.validation for d in datasets_s]),
            test=_stack([d.test for d in datasets_s]),
        )

    @property
    def name(self):
        return self.train.name if self.train is not None else None

    def setting(self):
        return {k: (d.setting() if hasattr(d, "setting") else None) for k, d in
                zip(("train", "validation", "test"), self._lst)}

    def __getitem__(self, item):
        return self._lst[item]

    def __len__(self):
        return len([d for d in self._lst if d is not None])

    def __iter__(self):
        return iter([d for d in self._lst if d is not None])

    def __repr__(self):
        return f"Datasets(train={self.train!r}, validation={self.validation!r}, test={self.test!r})"
