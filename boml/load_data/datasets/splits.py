"""Class splits of the few-shot datasets: the standard Omniglot splits and BOML's seeded one.

The Vinyals et al. (2016) Omniglot split ships with boml (``split_definitions/omniglot_vinyals``,
torchmeta's JSON files, MIT license, see the README there), so ``meta_omniglot(split="vinyals")`` and
``split="lake"`` need no extra file. Nothing here imports TensorFlow.
"""
import json
import os

from boml.errors import DataError, DataNotFoundError, InvalidArgumentError
from boml.load_data.datasets.dl_utils import get_rand_state

__all__ = ["OMNIGLOT_N_SPLITS", "OMNIGLOT_SPLITS", "packaged_split_folder", "omniglot_split"]

#: BOML's class boundaries of the "original" Omniglot split (1200 / 100 / 323 characters).
OMNIGLOT_N_SPLITS = (0, 1200, 1300, 1623)

#: The Omniglot splits :func:`omniglot_split` knows.
OMNIGLOT_SPLITS = ("original", "vinyals", "lake")

_SPLIT_FILES = tuple(f"{s}.json" for s in ("train", "val", "test"))


def packaged_split_folder():
    """The folder of the Vinyals split files shipped with boml (``train/val/test.json``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "split_definitions", "omniglot_vinyals")


def _split_folder(split_folder):
    if split_folder is None:
        return packaged_split_folder()
    missing = [f for f in _SPLIT_FILES if not os.path.isfile(os.path.join(split_folder, f))]
    if missing:
        raise DataNotFoundError(
            f"The Omniglot split folder {split_folder} (split_folder=) lacks {', '.join(missing)}: it must hold the "
            "torchmeta train.json, val.json and test.json. Leave split_folder unset to use the Vinyals split "
            f"shipped with boml ({packaged_split_folder()}); `boml train --split vinyals` always uses that one."
        )
    return split_folder


def read_split_json(path):
    """``{"Alphabet/characterNN": "background"|"evaluation"}`` from one torchmeta split file.

    Raises:
        DataError: the file cannot be read or is not in the torchmeta format.
    """
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"Split file {path} cannot be read as JSON ({e}). Restore it or reinstall boml.") from e
    out = {}
    try:
        for group, alphabets in spec.items():
            for alphabet, chars in alphabets.items():
                for ch in chars:
                    out[f"{alphabet}/{ch}"] = group
    except (AttributeError, TypeError) as e:
        raise DataError(
            f"Split file {path} is not in the torchmeta format "
            '{"background"|"evaluation": {Alphabet: ["characterNN", ...]}}.'
        ) from e
    return out


def _default_n_splits(n):
    if n == OMNIGLOT_N_SPLITS[-1]:
        return OMNIGLOT_N_SPLITS
    return (0, int(round(n * 1200 / 1623)), int(round(n * 1300 / 1623)), n)


def omniglot_split(classes, split="original", seed=0, n_splits=None, split_folder=None, where="the data"):
    """Divides Omniglot characters into ``[train, validation, test]`` lists.

    Args:
        classes: the characters present (``"Alphabet/characterNN"``).
        split: ``"original"`` (BOML: the sorted names shuffled by ``RandomState(seed)``, cut at ``n_splits``),
            ``"vinyals"`` (Vinyals et al. 1028/172/423) or ``"lake"`` (the official background / evaluation
            alphabets as train / test, no validation).
        seed: seed of the "original" shuffle.
        n_splits: 4 class boundaries of the "original" split (default ``(0, 1200, 1300, 1623)`` or the same
            proportions of a subset).
        split_folder: a folder of torchmeta ``train/val/test.json`` replacing the shipped Vinyals files.
        where: names the data in error messages.

    Returns:
        Three lists of characters (in the order of ``classes`` for the JSON splits).

    Raises:
        InvalidArgumentError: unknown ``split`` or bad ``n_splits``.
        DataNotFoundError: ``split_folder`` lacks a file.
        DataError: no character of the data is in the split.
    """
    if split not in OMNIGLOT_SPLITS:
        raise InvalidArgumentError(f"split must be one of {', '.join(map(repr, OMNIGLOT_SPLITS))}; got {split!r}.")
    classes = sorted(classes)
    if split == "original":
        shuffled = list(classes)
        get_rand_state(seed).shuffle(shuffled)
        bounds = tuple(int(b) for b in (n_splits if n_splits is not None else _default_n_splits(len(classes))))
        if len(bounds) != 4 or list(bounds) != sorted(bounds) or bounds[0] < 0 or bounds[-1] > len(classes):
            raise InvalidArgumentError(
                f"n_splits must be 4 non-decreasing class boundaries within 0..{len(classes)}; got {n_splits!r}."
            )
        return [shuffled[bounds[i]:bounds[i + 1]] for i in range(3)]
    folder = _split_folder(split_folder)
    specs = [read_split_json(os.path.join(folder, f)) for f in _SPLIT_FILES]
    if split == "vinyals":
        parts = [[c for c in classes if c in spec] for spec in specs]
    else:
        groups = {k: v for spec in specs for k, v in spec.items()}
        parts = [[c for c in classes if groups.get(c) == "background"], [],
                 [c for c in classes if groups.get(c) == "evaluation"]]
    if classes and not any(parts):
        raise DataError(
            f"None of the {len(classes)} Omniglot characters in {where} appears in the {split} split files of "
            f"{folder}. Check the folder layout (<Alphabet>/<characterNN>), or use --split original."
        )
    return parts
