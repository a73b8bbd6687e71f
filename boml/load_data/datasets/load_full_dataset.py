"""Loaders of real datasets: Omniglot, Mini-ImageNet (few-shot) and MNIST (classification).

Numpy + Pillow only; nothing here imports TensorFlow. Every loader takes an explicit folder
(default: under ``$DATASETS_FOLDER``, read at call time) and raises typed errors from
:mod:`boml.errors` that name the offending file or setting.

Fixes with respect to the original BOML data layer:

* Omniglot PNGs are decoded explicitly with Pillow and ``convert("L")`` (1-bit PNGs come back
  as booleans from some readers, which silently blanked the original's images); ink maps to 1.
* Rotations are exact ``np.rot90`` turns, each class labelled with its true angle (the original
  rotated cumulatively and swapped the 180/270 labels).
* Class lists are sorted before the seeded shuffle, so the split does not depend on the
  filesystem; the standard Vinyals split (torchmeta json) is available too.
* Images are stored as uint8 and decoded lazily (Omniglot: ~25 MB for all 32,460 drawings;
  Mini-ImageNet: a bounded LRU cache instead of ~10 GB of float64).
* Support and query sets never share an image (see :mod:`structures`).
"""
import gzip
import io
import os
import pickle
import struct
import tarfile
import zipfile
from collections import OrderedDict

import numpy as np

from boml.errors import DataError, DataNotFoundError, InvalidArgumentError
from boml.load_data.datasets.dl_utils import get_rand_state, to_one_hot_enc
from boml.load_data.datasets.downloads import MNIST_NAMES, fetch_command, find_mnist_file, locate_dataset
from boml.load_data.datasets.splits import OMNIGLOT_SPLITS, omniglot_split
from boml.load_data.datasets.structures import ClassMetaDataset, Dataset, Datasets

__all__ = [
    "OmniglotMetaDataset",
    "ImageNetMetaDataset",
    "meta_omniglot",
    "meta_mini_imagenet",
    "mnist",
    "redivide_data",
    "decode_omniglot_png",
    "OMNIGLOT_ROTATIONS",
]

OMNIGLOT_ROTATIONS = (0, 90, 180, 270)
_OMNIGLOT_SIDE = 28
_OMNIGLOT_ORIGINAL_SIDE = 105
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _pil():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - pillow is a dependency
        raise DataError(
            "Reading image datasets needs Pillow, which is not installed. Run `pip install pillow`."
        ) from e
    return Image


# ==================================================================================== omniglot io
def decode_omniglot_png(data, source="<bytes>"):
    """Decodes one Omniglot PNG (bytes) to a ``(28, 28)`` uint8 array with ink = 255.

    28x28 images are used as they are; 105x105 originals are resized with Pillow LANCZOS *before*
    the conversion to "L", which reproduces the standard ``omniglot_resized`` files exactly.
    Any other size, or undecodable bytes, raise ``DataError`` naming ``source``.
    """
    Image = _pil()
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as e:  # PIL raises several types for corrupt data
        raise DataError(f"Omniglot image {source} cannot be decoded ({e}). Replace or delete the file.") from e
    if im.size == (_OMNIGLOT_ORIGINAL_SIDE, _OMNIGLOT_ORIGINAL_SIDE):
        im = im.resize((_OMNIGLOT_SIDE, _OMNIGLOT_SIDE), resample=Image.LANCZOS)
    elif im.size != (_OMNIGLOT_SIDE, _OMNIGLOT_SIDE):
        raise DataError(
            f"Omniglot image {source} has size {im.size[0]}x{im.size[1]}; allowed are 28x28 (resized set) "
            "and 105x105 (originals). Replace the file."
        )
    gray = np.asarray(im.convert("L"), dtype=np.uint8)
    return (255 - gray).astype(np.uint8)  # black stroke (0) -> ink 255


_SOURCE_MEMO = OrderedDict()
_SOURCE_MEMO_SIZE = 4


def _memo_key(path, extra):
    st = os.stat(path)
    return (os.path.realpath(path), st.st_mtime_ns, st.st_size, extra)


def _memo_get(key):
    if key in _SOURCE_MEMO:
        _SOURCE_MEMO.move_to_end(key)
        return _SOURCE_MEMO[key]
    return None


def _memo_put(key, value):
    _SOURCE_MEMO[key] = value
    while len(_SOURCE_MEMO) > _SOURCE_MEMO_SIZE:
        _SOURCE_MEMO.popitem(last=False)


def _add_member(index, name, ref, alphabets):
    """Files ``.../<Alphabet>/<characterNN>/<file>.png`` go to ``index[class][file] = (name, ref)``."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    if len(parts) < 3 or not parts[-1].lower().endswith(".png"):
        return None
    alphabet, char = parts[-3], parts[-2]
    if alphabets is not None and alphabet not in alphabets:
        return len(parts)
    index.setdefault(f"{alphabet}/{char}", {}).setdefault(parts[-1], (name, ref))
    return len(parts)


def _char_dirs_from(dir_names, file_depths, alphabets):
    """Character folders (``Alphabet/characterNN``) named by the directory entries of an archive.

    A directory is a character folder if it sits one level above the PNG files (or, with no
    PNG at all, at the deepest directory level). Used to report empty classes.
    """
    dirs = [[p for p in n.replace("\\", "/").split("/") if p] for n in dir_names]
    dirs = [d for d in dirs if d]
    if not dirs:
        return set()
    depth = (max(file_depths) - 1) if file_depths else max(len(d) for d in dirs)
    return {f"{d[-2]}/{d[-1]}" for d in dirs
            if len(d) == depth and len(d) >= 2 and (alphabets is None or d[-2] in alphabets)}


class _UnusualTar(Exception):
    pass


def _fast_tar_members(raw):
    """Yields ``(name, typeflag, data_offset, size)`` of a plain ustar/GNU tar held in memory.

    About 10x faster than ``tarfile`` for the 34k members of Omniglot; raises ``_UnusualTar``
    for anything it does not handle (pax headers, base-256 sizes...), and the caller then falls
    back to ``tarfile``.
    """
    pos, n, long_name = 0, len(raw), None
    while pos + 512 <= n:
        header = raw[pos:pos + 512]
        if header.count(0) == 512:
            return
        if header[257:262] != b"ustar":
            raise _UnusualTar()
        size_field = header[124:136]
        if size_field[0] & 0x80:
            raise _UnusualTar()
        size = int(size_field.rstrip(b"\0 ").strip() or b"0", 8)
        flag = header[156:157]
        name = header[0:100].split(b"\0", 1)[0]
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix and not header[257:263] == b"ustar ":  # POSIX prefix (GNU uses the field otherwise)
            name = prefix + b"/" + name
        start = pos + 512
        pos = start + (size + 511) // 512 * 512
        if flag == b"L":  # GNU long name: the data is the name of the next member
            long_name = raw[start:start + size].split(b"\0", 1)[0]
            continue
        if flag in (b"x", b"g", b"K"):
            raise _UnusualTar()
        if long_name is not None:
            name, long_name = long_name, None
        yield name.decode("utf-8", "surrogateescape"), flag, start, size
    return


def _tar_members(raw):
    try:
        return list(_fast_tar_members(raw))
    except (_UnusualTar, ValueError):
        out = []
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for m in tar:
                flag = b"5" if m.isdir() else (b"0" if m.isfile() else b"?")
                out.append((m.name, flag, m.offset_data, m.size))
        return out


def _index_tar(path, alphabets):
    key = _memo_key(path, ("tar", None if alphabets is None else tuple(sorted(alphabets))))
    cached = _memo_get(key)
    if cached is not None:
        return cached
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read()  # ~34 MB for the whole set: much faster than seeking inside the gzip
        index, dir_names, depths = {}, [], set()
        for name, flag, start, size in _tar_members(raw):
            if flag == b"5":
                dir_names.append(name)
            elif flag in (b"0", b"\0", b"7"):
                depths.add(_add_member(index, name, (start, size), alphabets))
    except (OSError, EOFError, tarfile.TarError) as e:
        raise DataError(f"Omniglot archive {path} cannot be read ({e}). Re-download or re-create it.") from e
    files = {}
    for ckey, entries in index.items():
        files[ckey] = [(f"{path}:{name}", raw[s:s + n]) for fn, (name, (s, n)) in sorted(entries.items())]
    for ckey in _char_dirs_from(dir_names, depths - {None}, alphabets):
        files.setdefault(ckey, [])
    _memo_put(key, files)
    return files


def _index_zip(path, alphabets):
    key = _memo_key(path, ("zip", None if alphabets is None else tuple(sorted(alphabets))))
    cached = _memo_get(key)
    if cached is not None:
        return cached
    try:
        with zipfile.ZipFile(path) as z:
            index, dir_names, depths = {}, [], set()
            for info in z.infolist():
                if info.is_dir():
                    dir_names.append(info.filename)
                else:
                    depths.add(_add_member(index, info.filename, info.filename, alphabets))
            files = {}
            for ckey, entries in index.items():
                files[ckey] = [(f"{path}:{name}", z.read(name)) for fn, (_, name) in sorted(entries.items())]
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(f"Omniglot archive {path} cannot be read ({e}). Re-download it.") from e
    for ckey in _char_dirs_from(dir_names, depths - {None}, alphabets):
        files.setdefault(ckey, [])
    _memo_put(key, files)
    return files


def _index_dir(root, alphabets):
    files = {}
    for alphabet in sorted(os.listdir(root)):
        a_dir = os.path.join(root, alphabet)
        if (not os.path.isdir(a_dir) or alphabet.startswith(".")
                or (alphabets is not None and alphabet not in alphabets)):
            continue
        for char in sorted(os.listdir(a_dir)):
            c_dir = os.path.join(a_dir, char)
            if not os.path.isdir(c_dir):
                continue
            pngs = sorted(f for f in os.listdir(c_dir) if f.lower().endswith(".png"))
            entries = []
            for f in pngs:
                p = os.path.join(c_dir, f)
                with open(p, "rb") as fh:
                    entries.append((p, fh.read()))
            files[f"{alphabet}/{char}"] = entries
    return files


def _is_zip_name(name):
    return name.lower().endswith(".zip")


def _is_tar_name(name):
    return name.lower().endswith((".tar.gz", ".tgz", ".tar"))


def _omniglot_sources(path):
    """Lists ``(kind, path)`` sources of Omniglot images at ``path`` (file or folder)."""
    if not os.path.exists(path):
        raise DataNotFoundError(
            f"Omniglot folder or archive {path} does not exist. Pass --data_folder DIR (folder= in Python) naming "
            "the omniglot_resized folder, omniglot_resized.tar.gz or the official images_*.zip files, or run: "
            + fetch_command("omniglot")
        )
    if os.path.isfile(path):
        if _is_tar_name(path):
            return [("tar", path)]
        if _is_zip_name(path):
            return [("zip", path)]
        raise DataError(f"Omniglot file {path} is neither a .tar.gz/.tar nor a .zip archive. Pass one of those.")
    entries = sorted(os.listdir(path))
    if "omniglot_resized" in entries and os.path.isdir(os.path.join(path, "omniglot_resized")):
        return _omniglot_sources(os.path.join(path, "omniglot_resized"))
    tars = [e for e in entries if e.startswith("omniglot_resized") and _is_tar_name(e)]
    if tars:
        return [("tar", os.path.join(path, tars[0]))]
    zips = [e for e in entries if e.startswith(("images_background", "images_evaluation")) and _is_zip_name(e)]
    if zips:
        return [("zip", os.path.join(path, z)) for z in zips]
    official_dirs = [e for e in entries if e.startswith(("images_background", "images_evaluation"))
                     and os.path.isdir(os.path.join(path, e))]
    if official_dirs:
        return [("dir", os.path.join(path, d)) for d in official_dirs]
    return [("dir", path)]


def _load_omniglot_files(path, alphabets=None):
    """``{"Alphabet/characterNN": [(source, png bytes), ...]}`` from every source at ``path``."""
    files = {}
    for kind, src in _omniglot_sources(path):
        part = {"tar": _index_tar, "zip": _index_zip, "dir": _index_dir}[kind](src, alphabets)
        for k, v in part.items():
            if k in files:  # the same character in two archives (e.g. small1/small2): merge drawings
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
    return files


# =============================================================================== omniglot dataset
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

    :param info: dict; ``info["classes"]`` lists the characters (``"Alphabet/characterNN"``) and
        ``info["base_folder"]`` the source used when ``files`` is not given.
    :param rotations: angles among (0, 90, 180, 270); each (character, angle) is a separate class
        named ``"<Alphabet>/<characterNN>/rot_<angle>"`` whose images are exactly
        ``np.rot90(image, angle // 90)``. ``None`` or ``()``: no rotation, one class per character.
    :param files: mapping character -> list of ``(source, png bytes)``; PNGs are decoded on first
        use (or all at construction with ``load_all_images=True``) and kept as uint8.
    """

    def __init__(self, info=None, rotations=None, name="Omniglot", num_classes=None, num_examples=None,
                 one_hot_enc=True, files=None, load_all_images=False):
        super().__init__(info=info, name=name, num_classes=num_classes, num_examples=num_examples,
                         one_hot_enc=one_hot_enc)
        self.rotations = _check_rotations(rotations)
        if files is None:
            folder = self.info.get("base_folder")
            if folder is None:
                raise InvalidArgumentError(
                    "OmniglotMetaDataset needs files= or info['base_folder']; got neither."
                )
            files = _load_omniglot_files(folder)
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
        self._decoded = {}
        n_rot = max(1, len(self.rotations))
        if self.rotations:
            self._names = [f"{c}/rot_{r}" for c in self.characters for r in self.rotations]
        else:
            self._names = list(self.characters)
        self._n_rot = n_rot
        self.info.setdefault("all_classes", list(self._names))
        if load_all_images:
            for i in range(len(self.characters)):
                self._char_images(i)

    @property
    def class_names(self):
        return self._names

    @property
    def image_shape(self):
        return (_OMNIGLOT_SIDE, _OMNIGLOT_SIDE, 1)

    def class_size(self, c):
        return len(self._files[self.characters[c // self._n_rot]])

    def min_class_size(self):
        return min(len(v) for v in self._files.values())

    def _char_images(self, i):
        imgs = self._decoded.get(i)
        if imgs is None:
            entries = self._files[self.characters[i]]
            imgs = np.stack([decode_omniglot_png(b, src) for src, b in entries])
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


def _check_examples(k_train, k_test, min_size, what):
    if k_train is not None and k_train < 1:
        raise InvalidArgumentError(f"examples_train must be >= 1; got {k_train!r}.")
    if k_test is not None and k_test < 0:
        raise InvalidArgumentError(f"examples_test must be >= 0; got {k_test!r}.")
    need = (k_train or 0) + (k_test or 0)
    if need > min_size:
        raise DataError(
            f"examples_train={k_train} + examples_test={k_test} = {need} images per class, but {what} "
            f"has only {min_size} images in its smallest class. Ask for fewer shots/queries."
        )


def _num_examples(n_classes, k_train, k_test):
    if n_classes is None or k_train is None:
        return None
    return (n_classes * k_train, n_classes * (k_test or 0))


def meta_omniglot(folder=None, std_num_classes=None, examples_train=None, examples_test=None,
                  one_hot_enc=True, _rand=0, n_splits=None, split="original", rotations=OMNIGLOT_ROTATIONS,
                  alphabets=None, split_folder=None, load_all_images=False, download=False, name="Omniglot"):
    """Omniglot as ``Datasets(train, validation, test)`` of :class:`OmniglotMetaDataset`.

    :param folder: the ``omniglot_resized`` folder (``<Alphabet>/<characterNN>/*.png``, 28x28),
        the ``omniglot_resized.tar.gz`` archive (read directly, no extraction), the official
        ``images_background.zip``/``images_evaluation.zip`` (or the ``*_small*.zip``) or a folder
        holding them (105x105, resized to 28x28 with LANCZOS like the standard set).
        Default: found by :func:`~boml.load_data.datasets.downloads.locate_dataset` in the datasets
        folder (``$DATASETS_FOLDER``, else ``~/.boml/datasets``): ``omniglot/`` (where
        ``python -m boml data fetch omniglot`` puts the official zips), ``omniglot_resized/``, then
        ``omniglot_resized.tar.gz``.
    :param std_num_classes: ways N of the episodes (None: give it to ``generate_datasets``).
    :param examples_train: support shots per class; ``examples_test``: queries per class.
    :param _rand: seed of the shuffle of the "original" split.
    :param n_splits: class boundaries of the "original" split; default ``(0, 1200, 1300, 1623)``
        (1200/100/323 characters) or the same proportions of a subset.
    :param split: ``"original"`` (BOML: sorted names, shuffled by ``RandomState(_rand)``),
        ``"vinyals"`` (Vinyals et al. 1028/172/423, shipped with boml) or ``"lake"`` (official
        background 964 / evaluation 659 alphabets as train / test, no validation).
    :param rotations: angles making extra classes (default all four: 4800/400/1292 classes);
        ``None`` for none.
    :param alphabets: optional subset of alphabet names to load (for quick experiments).
    :param split_folder: a folder of torchmeta ``train/val/test.json`` replacing the Vinyals split files
        shipped with boml (vinyals/lake splits).
    :param load_all_images: decode every PNG at construction instead of on first use.
    :param download: when nothing is found, download the official zips (sha256-verified) into
        ``<datasets folder>/omniglot`` (or ``folder``) and use them.
    """
    rotations = _check_rotations(rotations)
    if split not in OMNIGLOT_SPLITS:
        raise InvalidArgumentError(f"split must be one of {', '.join(map(repr, OMNIGLOT_SPLITS))}; got {split!r}.")
    if alphabets is not None:
        alphabets = set([alphabets] if isinstance(alphabets, str) else alphabets)
    folder = locate_dataset("omniglot", folder, download=download)
    files = _load_omniglot_files(folder, alphabets)
    n_cls = std_num_classes
    parts = omniglot_split(sorted(files), split=split, seed=_rand, n_splits=n_splits, split_folder=split_folder,
                           where=folder)

    min_size = min(len(v) for v in files.values())
    _check_examples(examples_train, examples_test, min_size, f"Omniglot at {folder}")
    out = []
    for split_name, part in zip(("train", "validation", "test"), parts):
        if not part:
            out.append(None)
            continue
        out.append(OmniglotMetaDataset(
            info={"base_folder": folder, "classes": part, "split": split_name, "split_kind": split},
            rotations=rotations, name=name, num_classes=n_cls,
            num_examples=_num_examples(n_cls, examples_train, examples_test), one_hot_enc=one_hot_enc,
            files=files, load_all_images=load_all_images,
        ))
    return Datasets(train=out[0], validation=out[1], test=out[2])


# ============================================================================== mini-imagenet
class _LRUCache:
    """A small least-recently-used cache with a bounded number of entries."""

    def __init__(self, maxsize):
        self.maxsize = max(0, int(maxsize))
        self._d = OrderedDict()

    def get(self, key):
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        return None

    def put(self, key, value):
        if self.maxsize == 0:
            return
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.maxsize:
            self._d.popitem(last=False)

    def __len__(self):
        return len(self._d)


class ImageNetMetaDataset(ClassMetaDataset):
    """Mini-ImageNet-style meta-dataset: RGB images per class, read lazily.

    Images come either from files (``class_files``: one list of paths per class, decoded with
    Pillow, converted to RGB and resized to ``resize`` x ``resize`` with LANCZOS) or from an
    in-memory uint8 array (``array`` plus ``class_indices``). Decoded images stay in a bounded
    LRU cache of ``cache_size`` images (about 21 KB each at 84x84), so memory does not grow with
    the dataset; ``load_all_images=True`` decodes everything up front instead.
    """

    def __init__(self, info=None, name="Mini", num_classes=None, num_examples=None, one_hot_enc=True,
                 class_names=None, class_files=None, array=None, class_indices=None, resize=84,
                 load_all_images=False, cache_size=5000):
        super().__init__(info=info, name=name, num_classes=num_classes, num_examples=num_examples,
                         one_hot_enc=one_hot_enc)
        if (class_files is None) == (array is None):
            raise InvalidArgumentError("ImageNetMetaDataset needs exactly one of class_files= or array=.")
        self.resize = None if resize is None else int(resize)
        self._class_files = class_files
        self._array = array
        self._class_indices = class_indices
        n = len(class_files) if class_files is not None else len(class_indices)
        self._names = list(class_names) if class_names is not None else [f"class{i}" for i in range(n)]
        if len(self._names) != n:
            raise InvalidArgumentError(f"class_names has {len(self._names)} entries for {n} classes.")
        sizes = [len(v) for v in (class_files if class_files is not None else class_indices)]
        if not sizes or min(sizes) == 0:
            bad = self._names[sizes.index(0)] if sizes else "<none>"
            raise DataError(f"{name}: class {bad!r} has no images. Remove it or restore its images.")
        self._cache = _LRUCache(cache_size)
        self._all = None
        self.info.setdefault("all_classes", list(self._names))
        if self.resize is None:
            first = self._read(0, 0)
            self._shape = first.shape
        else:
            self._shape = (self.resize, self.resize, 3)
        if load_all_images:
            self._all = [np.stack([self._read(c, i) for i in range(self.class_size(c))]) for c in range(n)]

    @property
    def class_names(self):
        return self._names

    @property
    def image_shape(self):
        return tuple(self._shape)

    def class_size(self, c):
        src = self._class_files if self._class_files is not None else self._class_indices
        return len(src[c])

    def _fit(self, img, source):
        Image = _pil()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if self.resize is not None and img.shape[:2] != (self.resize, self.resize):
            img = np.asarray(Image.fromarray(img).resize((self.resize, self.resize), resample=Image.LANCZOS))
        if self.resize is None and hasattr(self, "_shape") and img.shape != tuple(self._shape):
            raise DataError(
                f"{self.name}: image {source} has shape {img.shape}, expected {tuple(self._shape)}. "
                "Pass resize= to bring all images to one size."
            )
        return np.ascontiguousarray(img, dtype=np.uint8)

    def _read(self, c, i):
        if self._array is not None:
            j = int(self._class_indices[c][i])
            return self._fit(np.asarray(self._array[j]), f"{self._names[c]}[{j}]")
        path = self._class_files[c][i]
        Image = _pil()
        if not os.path.isfile(path):
            raise DataNotFoundError(f"{self.name}: image file {path} does not exist. Restore it or fix the split.")
        try:
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as e:
            raise DataError(f"{self.name}: image {path} cannot be decoded ({e}). Replace or delete it.") from e
        return self._fit(img, path)

    def load_images(self, c, indices):
        c = int(c)
        if self._all is not None:
            return self._all[c][np.asarray(indices, dtype=np.int64)]
        out = []
        for i in indices:
            key = (c, int(i))
            img = self._cache.get(key)
            if img is None:
                img = self._read(c, int(i))
                self._cache.put(key, img)
            out.append(img)
        return np.stack(out)

    @property
    def cache_len(self):
        return len(self._cache)


def _read_csv(path):
    rows = []
    try:
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError as e:
        raise DataError(f"Split file {path} cannot be read ({e}).") from e
    if lines and lines[0].replace(" ", "").lower() == "filename,label":
        lines = lines[1:]
    for n, ln in enumerate(lines):
        parts = ln.split(",")
        if len(parts) != 2:
            raise DataError(f"Split file {path}, line {n + 2}: expected 'filename,label', got {ln!r}.")
        rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def _mini_cache_file(folder, sub):
    for fn in (f"mini-imagenet-cache-{sub}.pkl", f"{sub}.pkl", f"{sub}.npz"):
        p = os.path.join(folder, fn)
        if os.path.isfile(p):
            return p
    return None


def _load_mini_cache(path):
    """(array, class_names, class_indices) from a ``.pkl`` (image_data + class_dict) or ``.npz``."""
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        else:
            with open(path, "rb") as f:
                data = pickle.load(f)
    except Exception as e:
        raise DataError(f"Mini-ImageNet cache {path} cannot be read ({e}). Re-create it.") from e
    images = data.get("image_data", data.get("images"))
    if images is None:
        raise DataError(f"Mini-ImageNet cache {path} has no 'image_data' or 'images' array.")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"Mini-ImageNet cache {path}: images have shape {images.shape}, expected (n, H, W, 3).")
    if "class_dict" in data:
        cd = data["class_dict"]
        names = sorted(cd)
        indices = [np.asarray(cd[k], dtype=np.int64) for k in names]
    elif "labels" in data:
        labels = np.asarray(data["labels"])
        if labels.shape[0] != images.shape[0]:
            raise DataError(f"Mini-ImageNet cache {path}: {labels.shape[0]} labels for {images.shape[0]} images.")
        names = sorted(set(labels.tolist()))
        indices = [np.flatnonzero(labels == k) for k in names]
        names = [str(k) for k in names]
    else:
        raise DataError(f"Mini-ImageNet cache {path} has neither 'class_dict' nor 'labels'.")
    if images.dtype != np.uint8:
        images = np.clip(np.round(images * 255.0 if images.max() <= 1.0 else images), 0, 255).astype(np.uint8)
    return images, names, indices


def _load_mini_h5(path):
    try:
        import h5py
    except ImportError as e:
        raise DataError(f"Reading {path} needs h5py, which is not installed. Run `pip install h5py`.") from e
    with h5py.File(path, "r") as f:
        images = np.asarray(f["X"], dtype=np.uint8)
    n = images.shape[0] // 600
    return images, [f"class{i}" for i in range(n)], [np.arange(i * 600, (i + 1) * 600) for i in range(n)]


def _mini_split_from_tree(split_dir):
    names, files = [], []
    for wnid in sorted(os.listdir(split_dir)):
        d = os.path.join(split_dir, wnid)
        if not os.path.isdir(d):
            continue
        imgs = sorted(f for f in os.listdir(d) if f.lower().endswith(_IMAGE_EXTS))
        if not imgs:
            raise DataError(f"Mini-ImageNet class folder {d} has no images. Remove it or restore its images.")
        names.append(wnid)
        files.append([os.path.join(d, f) for f in imgs])
    if not names:
        raise DataError(f"Mini-ImageNet split folder {split_dir} has no class folders (<wnid>/*.jpg).")
    return names, files


def _mini_split_from_csv(csv_path, image_dirs):
    rows = _read_csv(csv_path)
    if not rows:
        raise DataError(f"Split file {csv_path} lists no images.")
    by_class = OrderedDict()
    for fn, label in rows:
        by_class.setdefault(label, []).append(fn)
    names, files = [], []
    for label in sorted(by_class):
        paths = []
        for fn in by_class[label]:
            for d in image_dirs:
                for p in (os.path.join(d, fn), os.path.join(d, label, fn)):
                    if os.path.isfile(p):
                        paths.append(p)
                        break
                else:
                    continue
                break
            else:
                raise DataNotFoundError(
                    f"Image {fn} (class {label}) listed in {csv_path} was not found in "
                    + ", ".join(image_dirs) + ". Put the images there or fix folder=."
                )
        names.append(label)
        files.append(paths)
    return names, files


def meta_mini_imagenet(folder=None, sub_folders=None, std_num_classes=None, examples_train=None,
                       examples_test=None, resize=84, one_hot_enc=True, load_all_images=False, h5=False,
                       split_folder=None, cache_size=5000, name="Mini"):
    """Mini-ImageNet as ``Datasets(train, validation, test)`` of :class:`ImageNetMetaDataset`.

    The real Mini-ImageNet images are NOT available in this environment (only the Ravi split
    CSVs are); the tests build a small image tree in the same layouts.

    Per split ``s`` in ``sub_folders`` (default ``("train", "val", "test")``) the first of these
    that exists in ``folder`` is used:

    1. a cache: ``mini-imagenet-cache-<s>.pkl`` / ``<s>.pkl`` (dict with ``image_data`` uint8
       (n, H, W, 3) and ``class_dict`` {wnid: indices}) or ``<s>.npz`` (``images`` + ``labels``);
    2. with ``h5=True``: ``<s>.h5`` with dataset ``"X"``, 600 images per class in order (h5py);
    3. a folder per class: ``<s>/<wnid>/*.jpg``;
    4. the Ravi & Larochelle CSV ``<s>.csv`` (``filename,label``; searched in ``folder`` then
       ``split_folder``) with the images in ``folder/images/``, ``folder/`` or ``folder/<s>/``.

    :param resize: side of the square RGB images (LANCZOS), ``None`` to keep the native size.
    :param load_all_images: decode everything up front (uint8) instead of lazily.
    :param cache_size: images kept by each split's LRU cache when lazy.
    """
    folder = locate_dataset("miniimagenet", folder)
    if not os.path.isdir(folder):
        raise DataNotFoundError(
            f"Mini-ImageNet folder {folder} is not a folder. Pass --data_folder DIR (folder= in Python) naming the "
            "folder with train/val/test class folders, split CSVs + images, or .pkl/.npz caches."
        )
    sub_folders = tuple(sub_folders) if sub_folders is not None else ("train", "val", "test")
    out, min_size = [], None
    common = dict(name=name, num_classes=std_num_classes, one_hot_enc=one_hot_enc, resize=resize,
                  load_all_images=load_all_images, cache_size=cache_size)
    for sub in sub_folders:
        info = {"base_folder": folder, "split": sub}
        cache = _mini_cache_file(folder, sub)
        h5_path = os.path.join(folder, f"{sub}.h5")
        tree = os.path.join(folder, sub)
        csv = None
        for d in (folder, split_folder):
            if d is not None and os.path.isfile(os.path.join(d, f"{sub}.csv")):
                csv = os.path.join(d, f"{sub}.csv")
                break
        if cache is not None:
            array, names, indices = _load_mini_cache(cache)
            kw = dict(array=array, class_indices=indices)
        elif h5 and os.path.isfile(h5_path):
            array, names, indices = _load_mini_h5(h5_path)
            kw = dict(array=array, class_indices=indices)
        elif os.path.isdir(tree) and any(os.path.isdir(os.path.join(tree, e)) for e in os.listdir(tree)):
            names, files = _mini_split_from_tree(tree)
            kw = dict(class_files=files)
        elif csv is not None:
            names, files = _mini_split_from_csv(csv, [os.path.join(folder, "images"), folder, tree])
            kw = dict(class_files=files)
        else:
            raise DataNotFoundError(
                f"Mini-ImageNet split {sub!r} not found in {folder}: expected {sub}/<wnid>/*.jpg, {sub}.csv + "
                f"images, {sub}.npz/.pkl{' or ' + sub + '.h5' if h5 else ''}."
            )
        sizes = [len(v) for v in (kw.get("class_files") or kw.get("class_indices"))]
        min_size = min(sizes) if min_size is None else min(min_size, min(sizes))
        info["classes"] = list(names)
        out.append((info, names, kw))
    _check_examples(examples_train, examples_test, min_size, f"Mini-ImageNet at {folder}")
    num_examples = _num_examples(std_num_classes, examples_train, examples_test)
    metas = [ImageNetMetaDataset(info=info, class_names=names, num_examples=num_examples, **common, **kw)
             for info, names, kw in out]
    return Datasets.from_list(metas)


# ========================================================================================= mnist
def _find_mnist_file(folder, key):
    path = find_mnist_file(folder, key)
    if path is None:
        raise DataNotFoundError(
            f"MNIST file {MNIST_NAMES[key][0]}.gz (or uncompressed) not found in {folder}. Put the four standard "
            f"IDX files there, pass --data_folder DIR (folder= in Python), or run: {fetch_command('mnist')}"
        )
    return path


def _read_idx(path, expected_ndim):
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"MNIST file {path} cannot be read ({e}). Re-download it.") from e
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

    :param partition_proportions: fractions (summing to at most 1; the rest becomes one more
        partition) or absolute example counts (ints). Default: the original sizes.
    :param shuffle: shuffle the merged examples (with ``rand``) before splitting.
    :param filters: callable(s) ``(data, target) -> boolean mask`` applied to the merged data.
    :param maps: callable(s) ``(data, target) -> (data, target)`` applied after the filters.
    :returns: a list of :class:`Dataset`; ``info`` merges the infos of *all* inputs.
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
