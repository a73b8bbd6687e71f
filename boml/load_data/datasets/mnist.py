"""MNIST (LeCun et al., 1998) from the four standard IDX files, and :func:`redivide_data`.

``python -m boml data fetch mnist`` (or ``mnist(download=True)``) downloads the files, sha256-verified.
Nothing here imports TensorFlow.
"""
import struct

import numpy as np

from boml.errors import DataError, DataNotFoundError, InvalidArgumentError
from boml.load_data.datasets.archives import read_maybe_gzip
from boml.load_data.datasets.dl_utils import get_rand_state, to_one_hot_enc
from boml.load_data.datasets.locations import MNIST_NAMES, fetch_command, find_mnist_file, locate_dataset
from boml.load_data.datasets.structures import Dataset, Datasets

__all__ = ["mnist", "redivide_data"]


def _find_mnist_file(folder, key):
    path = find_mnist_file(folder, key)
    if path is None:
        raise DataNotFoundError(
            f"MNIST file {MNIST_NAMES[key][0]}.gz (or uncompressed) not found in {folder}. Put the four standard "
            f"IDX files there, pass --data_folder DIR (folder= in Python), or run: {fetch_command('mnist')}"
        )
    return path


def _read_idx(path, expected_ndim):
    """The uint8 array of an IDX file (gzip or not) with ``expected_ndim`` dimensions.

    Raises:
        DataError: the file is damaged (its gzip stream, or an IDX header that does not match its size).
    """
    raw = read_maybe_gzip(path, "MNIST file")
    if len(raw) < 4:
        raise DataError(f"MNIST file {path} is too short ({len(raw)} bytes) to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim != expected_ndim:
        raise DataError(
            f"MNIST file {path} has IDX header {raw[:4].hex()}, expected 0000080{expected_ndim} "
            f"(uint8, {expected_ndim} dimension(s)). Check the file."
        )
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    offset = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(raw) - offset != n:
        raise DataError(f"MNIST file {path}: header says {dims} = {n} values, found {len(raw) - offset} bytes.")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _apply_filters_maps(data, target, filters, maps):
    for f in (filters or []) if isinstance(filters, (list, tuple)) else [filters]:
        if f is None:
            continue
        mask = np.asarray(f(data, target), dtype=bool)
        if mask.shape != (data.shape[0],):
            raise InvalidArgumentError(
                f"a filter must return a boolean mask of shape ({data.shape[0]},); got {mask.shape}."
            )
        data, target = data[mask], target[mask]
    for m in (maps or []) if isinstance(maps, (list, tuple)) else [maps]:
        if m is not None:
            data, target = m(data, target)
    return data, target


def redivide_data(datasets, partition_proportions=None, shuffle=False, filters=None, maps=None, rand=None):
    """Merges ``datasets`` and splits them again.

    Args:
        datasets: the :class:`Dataset` objects to merge (``None`` entries are skipped).
        partition_proportions: fractions (summing to at most 1; the rest becomes one more partition) or
            absolute example counts (ints). Default: the original sizes.
        shuffle: shuffle the merged examples (with ``rand``) before splitting.
        filters: callable(s) ``(data, target) -> boolean mask`` applied to the merged data.
        maps: callable(s) ``(data, target) -> (data, target)`` applied after the filters.
        rand: seed or ``RandomState`` of the shuffle.

    Returns:
        A list of :class:`Dataset`; ``info`` merges the infos of *all* inputs.

    Raises:
        InvalidArgumentError: no dataset, or partitions that do not fit.
    """
    datasets = [d for d in datasets if d is not None]
    if not datasets:
        raise InvalidArgumentError("redivide_data needs at least one dataset.")
    data = np.concatenate([d.data for d in datasets])
    target = np.concatenate([d.target for d in datasets])
    info = {}
    for d in datasets:  # all of them (the original returned inside this loop)
        info.update(d.info)
    data, target = _apply_filters_maps(data, target, filters, maps)
    n = data.shape[0]
    if partition_proportions is None:
        bounds = np.cumsum([0] + [d.num_examples for d in datasets])
        bounds = np.minimum(bounds, n)
    else:
        props = list(partition_proportions)
        if all(isinstance(p, (int, np.integer)) for p in props):
            counts = [int(p) for p in props]
        else:
            if any(p < 0 for p in props) or sum(props) > 1 + 1e-9:
                raise InvalidArgumentError(
                    f"partition_proportions must be fractions >= 0 summing to <= 1; got {partition_proportions!r}."
                )
            counts = [int(round(p * n)) for p in props]
            if sum(props) < 1 - 1e-9:
                counts.append(n - sum(counts))
            else:
                counts[-1] = n - sum(counts[:-1])
        if sum(counts) > n or any(c < 0 for c in counts):
            raise InvalidArgumentError(f"partitions {counts} do not fit {n} examples.")
        bounds = np.cumsum([0] + counts)
    if shuffle:
        perm = get_rand_state(rand).permutation(n)
        data, target = data[perm], target[perm]
    name = datasets[0].name
    return [Dataset(data[a:b], target[a:b], info=dict(info), name=name) for a, b in zip(bounds[:-1], bounds[1:])]


def mnist(folder=None, one_hot=True, partitions=None, filters=None, maps=None, shuffle=False,
          validation_size=5000, reshape=True, rand=0, download=False, name="MNIST"):
    """MNIST from the four standard IDX files (``.gz`` or uncompressed) in ``folder``.

    Default folder: ``mnist/`` then ``mnist_data/`` in the datasets folder (``$DATASETS_FOLDER``, else
    ``~/.boml/datasets``); ``download=True`` fetches the four files there (sha256-verified) when missing,
    like ``python -m boml data fetch mnist``.
    Without ``partitions``: ``Datasets(train, validation, test)`` with the validation set being
    the first ``validation_size`` training images (55,000 / 5,000 / 10,000, like TF's reader).
    With ``partitions`` (fractions or counts): all 70,000 examples redivided by
    :func:`redivide_data` (shuffled with ``rand`` if ``shuffle``), via ``Datasets.from_list``.

    Images are float32 in [0, 1], shape (n, 784) (``reshape=False``: (n, 28, 28, 1)); targets
    are one-hot float32 (n, 10) or int64 labels.

    Args:
        folder: the folder of the four files (default: found in the datasets folder, see above).
        one_hot: one-hot targets instead of int64 labels.
        partitions: redivide all examples into these fractions or counts.
        filters: callable(s) ``(data, target) -> boolean mask``.
        maps: callable(s) ``(data, target) -> (data, target)``.
        shuffle: shuffle before redividing (with ``rand``).
        validation_size: training images kept apart as validation (without ``partitions``).
        reshape: flat 784-vectors instead of (28, 28, 1) images.
        rand: seed of the shuffle.
        download: fetch the files when they are missing.
        name: name of the datasets.

    Returns:
        ``Datasets``.

    Raises:
        MissingDataError: the files are not found (the message names the command that fetches them).
        DataError: a damaged or inconsistent file, named.
    """
    folder = locate_dataset("mnist", folder, download=download)
    parts = {}
    for split in ("train", "test"):
        x = _read_idx(_find_mnist_file(folder, f"{split}_images"), 3)
        y = _read_idx(_find_mnist_file(folder, f"{split}_labels"), 1)
        if x.shape[0] != y.shape[0]:
            raise DataError(
                f"MNIST {split} images ({x.shape[0]}) and labels ({y.shape[0]}) in {folder} disagree. Re-download."
            )
        if y.size and y.max() > 9:
            raise DataError(f"MNIST {split} labels in {folder} go up to {y.max()}; expected 0..9.")
        x = x.astype(np.float32) / np.float32(255.0)
        x = x.reshape(x.shape[0], -1) if reshape else x[..., None]
        t = to_one_hot_enc(y, 10) if one_hot else y.astype(np.int64)
        parts[split] = (x, t)
    info = {"base_folder": folder}
    if partitions is None:
        xtr, ttr = _apply_filters_maps(*parts["train"], filters, maps)
        xte, tte = _apply_filters_maps(*parts["test"], filters, maps)
        v = int(validation_size)
        if not 0 <= v <= xtr.shape[0]:
            raise InvalidArgumentError(f"validation_size must be in 0..{xtr.shape[0]}; got {validation_size!r}.")
        train = Dataset(xtr[v:], ttr[v:], info=info, name=name)
        validation = Dataset(xtr[:v], ttr[:v], info=info, name=name) if v else None
        test = Dataset(xte, tte, info=info, name=name)
        return Datasets(train=train, validation=validation, test=test)
    full = [Dataset(*parts["train"], info=info, name=name), Dataset(*parts["test"], info=info, name=name)]
    return Datasets.from_list(redivide_data(full, partitions, shuffle=shuffle, filters=filters, maps=maps, rand=rand))
