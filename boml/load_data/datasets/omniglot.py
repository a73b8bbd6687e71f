"""Omniglot (Lake et al., 2015) as a few-shot meta-dataset: :func:`meta_omniglot`.

Reads the 28x28 ``omniglot_resized`` set (a folder or its ``.tar.gz``, without extraction) or the official
105x105 ``images_background.zip`` / ``images_evaluation.zip`` (resized with LANCZOS, which reproduces the
resized set exactly). Nothing here imports TensorFlow.

Fixes with respect to the original BOML loader:

* PNGs are decoded explicitly with Pillow and ``convert("L")`` (1-bit PNGs come back as booleans from
  some readers, which silently blanked the original's images); ink maps to 1.
* Rotations are exact ``np.rot90`` turns, each class labelled with its true angle (the original rotated
  cumulatively and swapped the 180/270 labels).
* Class lists are sorted before the seeded shuffle, so the split does not depend on the filesystem; the
  standard Vinyals split ships with boml (:mod:`~boml.load_data.datasets.splits`).
* Images are kept as uint8 and decoded lazily (~25 MB for all 32,460 drawings); every image is checked
  once at load (see :func:`meta_omniglot`'s ``validate``), so a damaged file fails before training.
"""
import hashlib
import io
import os

import numpy as np

from boml.errors import DataError, InvalidArgumentError
from boml.load_data.datasets.archives import archive_members, is_tar_name, is_zip_name
from boml.load_data.datasets.locations import fetch_command, locate_dataset
from boml.load_data.datasets.images import pil_image
from boml.load_data.datasets.splits import OMNIGLOT_SPLITS, omniglot_split
from boml.load_data.datasets.structures import ClassMetaDataset, Datasets, check_shots, episode_totals
from boml.load_data.datasets.validation import validate_once

__all__ = ["OMNIGLOT_ROTATIONS", "OmniglotMetaDataset", "decode_omniglot_png", "meta_omniglot"]

#: The rotations that can make extra classes.
OMNIGLOT_ROTATIONS = (0, 90, 180, 270)
_SIDE = 28
_ORIGINAL_SIDE = 105


def decode_omniglot_png(data, source="<bytes>"):
    """Decodes one Omniglot PNG (bytes) to a ``(28, 28)`` uint8 array with ink = 255.

    28x28 images are used as they are; 105x105 originals are resized with Pillow LANCZOS *before* the
    conversion to "L", which reproduces the standard ``omniglot_resized`` files exactly.

    Raises:
        DataError: undecodable bytes or another size; the message names ``source``.
    """
    Image = pil_image()
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as e:  # Pillow raises several types for corrupt data
        raise DataError(f"Omniglot image {source} cannot be decoded ({e}). Replace or delete the file.") from e
    if im.size == (_ORIGINAL_SIDE, _ORIGINAL_SIDE):
        im = im.resize((_SIDE, _SIDE), resample=Image.LANCZOS)
    elif im.size != (_SIDE, _SIDE):
        raise DataError(
            f"Omniglot image {source} has size {im.size[0]}x{im.size[1]}; allowed are 28x28 (resized set) "
            "and 105x105 (originals). Replace the file."
        )
    gray = np.asarray(im.convert("L"), dtype=np.uint8)
    return (255 - gray).astype(np.uint8)  # black stroke (0) -> ink 255


# ============================================================================ reading the images
def _class_of(name):
    """``("Alphabet/characterNN", file name)`` of a member ``.../<Alphabet>/<characterNN>/<file>.png``."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if len(parts) < 3 or not parts[-1].lower().endswith(".png"):
        return None
    return f"{parts[-3]}/{parts[-2]}", parts[-1]


def _group_members(source, files, dirs):
    """``{class: [(source:member, bytes), ...]}`` (sorted by file name), empty classes included."""
    index, depths = {}, set()
    for name, data in files:
        found = _class_of(name)
        if found is None:
            continue
        depths.add(len([p for p in name.replace("\\", "/").split("/") if p]))
        index.setdefault(found[0], {}).setdefault(found[1], (f"{source}:{name}", data))
    out = {k: [v[f] for f in sorted(v)] for k, v in index.items()}
    dir_parts = [[p for p in d.replace("\\", "/").split("/") if p] for d in dirs]
    dir_parts = [d for d in dir_parts if len(d) >= 2]
    if dir_parts:  # a character folder is one level above the PNGs (or at the deepest level)
        depth = (max(depths) - 1) if depths else max(len(d) for d in dir_parts)
        for d in dir_parts:
            if len(d) == depth:
                out.setdefault(f"{d[-2]}/{d[-1]}", [])
    return out


def _read_tree(root):
    """``({class: [(path, bytes)]}, digest)`` of a ``<Alphabet>/<characterNN>/*.png`` folder."""
    files, digest = {}, hashlib.sha256()
    for alphabet in sorted(os.listdir(root)):
        a_dir = os.path.join(root, alphabet)
        if not os.path.isdir(a_dir) or alphabet.startswith("."):
            continue
        for char in sorted(os.listdir(a_dir)):
            c_dir = os.path.join(a_dir, char)
            if not os.path.isdir(c_dir):
                continue
            entries = []
            for f in sorted(f for f in os.listdir(c_dir) if f.lower().endswith(".png")):
                path = os.path.join(c_dir, f)
                with open(path, "rb") as handle:
                    data = handle.read()
                digest.update(f"{alphabet}/{char}/{f}:{len(data)}:".encode("utf-8", "surrogateescape"))
                digest.update(hashlib.sha256(data).digest())
                entries.append((path, data))
            files[f"{alphabet}/{char}"] = entries
    return files, digest.hexdigest()


def _sources(path):
    """``[(kind, path)]`` of the Omniglot sources at ``path`` (an archive or a folder)."""
    if os.path.isfile(path):
        if is_tar_name(path):
            return [("archive", path)]
        if is_zip_name(path):
            return [("archive", path)]
        raise DataError(f"Omniglot file {path} is neither a .tar.gz/.tar nor a .zip archive. Pass one of those.")
    entries = sorted(os.listdir(path))
    if "omniglot_resized" in entries and os.path.isdir(os.path.join(path, "omniglot_resized")):
        return _sources(os.path.join(path, "omniglot_resized"))
    tars = [e for e in entries if e.startswith("omniglot_resized") and is_tar_name(e)]
    if tars:
        return [("archive", os.path.join(path, tars[0]))]
    official = [e for e in entries if e.startswith(("images_background", "images_evaluation"))]
    zips = [e for e in official if is_zip_name(e)]
    if zips:
        return [("archive", os.path.join(path, z)) for z in zips]
    dirs = [e for e in official if os.path.isdir(os.path.join(path, e))]
    if dirs:
        return [("tree", os.path.join(path, d)) for d in dirs]
    return [("tree", path)]


def _load_files(path, alphabets=None):
    """``({class: [(source, png bytes)]}, digest)`` from every source at ``path``.

    The same character in two sources (e.g. ``images_background_small1/2``) merges its drawings.
    """
    files, digests = {}, []
    for kind, src in _sources(path):
        if kind == "archive":
            members, dirs, digest = archive_members(src)
            part = _group_members(src, members, dirs)
        else:
            part, digest = _read_tree(src)
        digests.append(digest)
        for k, v in part.items():
            if alphabets is not None and k.split("/")[0] not in alphabets:
                continue
            if k in files:
                seen = {os.path.basename(s) for s, _ in files[k]}
                files[k] = files[k] + [(s, b) for s, b in v if os.path.basename(s) not in seen]
            else:
                files[k] = list(v)
    if not files:
        raise DataError(
            f"No Omniglot characters found in {path}: expected <Alphabet>/<characterNN>/*.png"
            + (f" for alphabets {sorted(alphabets)}" if alphabets is not None else "")
            + f". Check --data_folder (folder= in Python), or run: {fetch_command('omniglot')}"
        )
    empty = sorted(k for k, v in files.items() if not v)
    if empty:
        raise DataError(
            f"Omniglot class {empty[0]!r} in {path} has no images ({len(empty)} empty class folder(s) in "
            "total). Remove the empty folders or restore their images."
        )
    return files, "+".join(digests)


def _decode_all(files, into):
    """Decodes every image (checking sizes and decodability) into ``into[character]``.

    Raises:
        DataError: the first undecodable or wrongly sized image, named.
    """
    for character, entries in files.items():
        into[character] = np.stack([decode_omniglot_png(data, source) for source, data in entries])


# ============================================================================ the meta-dataset
def _check_rotations(rotations):
    rotations = tuple(int(r) for r in (rotations or ()))
    bad = [r for r in rotations if r not in OMNIGLOT_ROTATIONS]
    if bad or len(set(rotations)) != len(rotations):
        raise InvalidArgumentError(
            f"rotations must be distinct angles among {OMNIGLOT_ROTATIONS}; got {rotations!r}. "
            "Use e.g. (0, 90, 180, 270) or None."
        )
    return rotations


class OmniglotMetaDataset(ClassMetaDataset):
    """Omniglot characters (optionally x4 rotations) as a few-shot meta-dataset.

    Args:
        info: dict; ``info["classes"]`` lists the characters (``"Alphabet/characterNN"``) and
            ``info["base_folder"]`` the source used when ``files`` is not given.
        rotations: angles among (0, 90, 180, 270); each (character, angle) is a separate class named
            ``"<Alphabet>/<characterNN>/rot_<angle>"`` whose images are exactly ``np.rot90(image, angle // 90)``.
            ``None`` or ``()``: no rotation, one class per character.
        name, num_classes, num_examples, one_hot_enc: see :class:`ClassMetaDataset`.
        files: mapping character -> list of ``(source, png bytes)``; PNGs are decoded on first use (or all at
            construction with ``load_all_images=True``) and kept as uint8.
        load_all_images: decode everything at construction.
        decoded: mapping character -> uint8 array ``(n, 28, 28)`` of already decoded images (shared by the
            splits of one :func:`meta_omniglot` call).
    """

    def __init__(self, info=None, rotations=None, name="Omniglot", num_classes=None, num_examples=None,
                 one_hot_enc=True, files=None, load_all_images=False, decoded=None):
        super().__init__(info=info, name=name, num_classes=num_classes, num_examples=num_examples,
                         one_hot_enc=one_hot_enc)
        self.rotations = _check_rotations(rotations)
        if files is None:
            folder = self.info.get("base_folder")
            if folder is None:
                raise InvalidArgumentError("OmniglotMetaDataset needs files= or info['base_folder']; got neither.")
            files, _ = _load_files(folder)
        classes = self.info.get("classes")
        if classes is None:
            classes = sorted(files)
        missing = [c for c in classes if c not in files]
        if missing:
            raise DataError(
                f"Omniglot class {missing[0]!r} is not in the data ({len(missing)} missing). "
                "Check the split definition against the folder."
            )
        self.characters = list(classes)
        self.info["classes"] = list(self.characters)
        self._files = {c: files[c] for c in self.characters}
        self._decoded = {i: decoded[c] for i, c in enumerate(self.characters) if c in (decoded or {})}
        self._n_rot = max(1, len(self.rotations))
        if self.rotations:
            self._names = [f"{c}/rot_{r}" for c in self.characters for r in self.rotations]
        else:
            self._names = list(self.characters)
        self.info.setdefault("all_classes", list(self._names))
        if load_all_images:
            for i in range(len(self.characters)):
                self._char_images(i)

    @property
    def class_names(self):
        return self._names

    @property
    def image_shape(self):
        return (_SIDE, _SIDE, 1)

    def class_size(self, c):
        return len(self._files[self.characters[c // self._n_rot]])

    def min_class_size(self):
        """Images in the smallest character."""
        return min(len(v) for v in self._files.values())

    def _char_images(self, i):
        imgs = self._decoded.get(i)
        if imgs is None:
            imgs = np.stack([decode_omniglot_png(b, src) for src, b in self._files[self.characters[i]]])
            self._decoded[i] = imgs
        return imgs

    def load_images(self, c, indices):
        i, r = divmod(int(c), self._n_rot)
        imgs = self._char_images(i)[np.asarray(indices, dtype=np.int64)]
        if self.rotations and self.rotations[r]:
            imgs = np.rot90(imgs, k=self.rotations[r] // 90, axes=(1, 2))
        return np.ascontiguousarray(imgs)[..., None]

    @property
    def nbytes(self):
        """Bytes held by the decoded uint8 images so far."""
        return int(sum(a.nbytes for a in self._decoded.values()))


def meta_omniglot(folder=None, std_num_classes=None, examples_train=None, examples_test=None,
                  one_hot_enc=True, _rand=0, n_splits=None, split="original", rotations=OMNIGLOT_ROTATIONS,
                  alphabets=None, split_folder=None, load_all_images=False, download=False, validate=True,
                  name="Omniglot"):
    """Omniglot as ``Datasets(train, validation, test)`` of :class:`OmniglotMetaDataset`.

    Args:
        folder: the ``omniglot_resized`` folder (``<Alphabet>/<characterNN>/*.png``, 28x28), the
            ``omniglot_resized.tar.gz`` archive (read directly, no extraction), the official
            ``images_background.zip``/``images_evaluation.zip`` (or the ``*_small*.zip``) or a folder holding
            them (105x105, resized to 28x28 with LANCZOS like the standard set). Default: found by
            :func:`~boml.load_data.datasets.downloads.locate_dataset` in the datasets folder
            (``$DATASETS_FOLDER``, else ``~/.boml/datasets``): ``omniglot/`` (where
            ``python -m boml data fetch omniglot`` puts the official zips), ``omniglot_resized/``, then
            ``omniglot_resized.tar.gz``.
        std_num_classes: ways N of the episodes (None: give it to ``generate_datasets``).
        examples_train: support shots per class.
        examples_test: queries per class.
        one_hot_enc: one-hot targets.
        _rand: seed of the shuffle of the "original" split.
        n_splits: class boundaries of the "original" split; default ``(0, 1200, 1300, 1623)``
            (1200/100/323 characters) or the same proportions of a subset.
        split: ``"original"`` (BOML: sorted names, shuffled by ``RandomState(_rand)``), ``"vinyals"``
            (Vinyals et al. 1028/172/423, shipped with boml) or ``"lake"`` (official background 964 /
            evaluation 659 alphabets as train / test, no validation).
        rotations: angles making extra classes (default all four: 4800/400/1292 classes); ``None`` for none.
        alphabets: optional subset of alphabet names to load (for quick experiments).
        split_folder: a folder of torchmeta ``train/val/test.json`` replacing the shipped Vinyals files.
        load_all_images: decode every PNG at construction instead of on first use.
        download: when nothing is found, download the official zips (sha256-verified) into
            ``<datasets folder>/omniglot`` (or ``folder``) and use them.
        validate: decode every image once at load, so that a damaged file fails here rather than in
            the middle of training (about 8 s for the whole set; the decoded images are kept). The result
            is remembered by the data's sha256 (see :mod:`~boml.load_data.datasets.validation`), so later
            loads skip it and decode lazily.
        name: name of the datasets.

    Returns:
        ``Datasets(train, validation, test)``; a split without classes is ``None``.

    Raises:
        MissingDataError: no data found (the message names the command that fetches it).
        DataError: damaged archives or images (named), empty classes, too few images per class.
        InvalidArgumentError: bad ``split``, ``n_splits``, ``rotations``, shots.
    """
    rotations = _check_rotations(rotations)
    if split not in OMNIGLOT_SPLITS:
        raise InvalidArgumentError(f"split must be one of {', '.join(map(repr, OMNIGLOT_SPLITS))}; got {split!r}.")
    if alphabets is not None:
        alphabets = set([alphabets] if isinstance(alphabets, str) else alphabets)
    folder = locate_dataset("omniglot", folder, download=download)
    files, digest = _load_files(folder, alphabets)
    parts = omniglot_split(sorted(files), split=split, seed=_rand, n_splits=n_splits, split_folder=split_folder,
                           where=folder)
    decoded = {}
    if validate:  # the first time, every image is decoded here (and kept: ~25 MB for the whole set)
        subset = "" if alphabets is None else "[" + ",".join(sorted(alphabets)) + "]"
        validate_once("omniglot", digest + subset, lambda: _decode_all(files, decoded))
    check_shots(examples_train, examples_test, min(len(v) for v in files.values()), f"Omniglot at {folder}")
    out = []
    for split_name, part in zip(("train", "validation", "test"), parts):
        if not part:
            out.append(None)
            continue
        out.append(OmniglotMetaDataset(
            info={"base_folder": folder, "classes": part, "split": split_name, "split_kind": split},
            rotations=rotations, name=name, num_classes=std_num_classes,
            num_examples=episode_totals(std_num_classes, examples_train, examples_test), one_hot_enc=one_hot_enc,
            files=files, load_all_images=load_all_images, decoded=decoded,
        ))
    return Datasets(train=out[0], validation=out[1], test=out[2])
