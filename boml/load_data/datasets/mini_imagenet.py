"""Mini-ImageNet (Vinyals et al., 2016; Ravi & Larochelle, 2017) as a few-shot meta-dataset.

boml cannot download Mini-ImageNet (its images come from ImageNet, under ImageNet's terms); this module
reads the usual layouts from a folder (see :func:`meta_mini_imagenet`). Images are decoded lazily into a
bounded LRU cache (or all at once), and every image file is checked once at load (sizes and
decodability, remembered by the folder's fingerprint; see :mod:`~boml.load_data.datasets.validation`).
Nothing here imports TensorFlow.
"""
import hashlib
import os
import pickle
from collections import OrderedDict

import numpy as np

from boml.errors import DataError, DataNotFoundError, InvalidArgumentError
from boml.load_data.datasets.archives import LRUCache
from boml.load_data.datasets.locations import locate_dataset
from boml.load_data.datasets.images import IMAGE_EXTENSIONS, pil_image
from boml.load_data.datasets.structures import ClassMetaDataset, Datasets, check_shots, episode_totals
from boml.load_data.datasets.validation import validate_once

__all__ = ["ImageNetMetaDataset", "meta_mini_imagenet"]


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
        self._cache = LRUCache(cache_size)
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
        Image = pil_image()
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
        Image = pil_image()
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
        imgs = sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTENSIONS))
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


def _fingerprint(class_files):
    """A digest of the paths, sizes and modification times of the image files (no reading)."""
    digest = hashlib.sha256()
    for files in class_files:
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                raise DataNotFoundError(f"Image file {path} does not exist. Restore it or fix the split.") from None
            digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _validate_image_files(class_files, name, same_size):
    """Decodes every image once; with ``same_size`` (no resize) all must have the first one's size."""
    Image = pil_image()
    first = None
    for files in class_files:
        for path in files:
            try:
                with Image.open(path) as im:
                    im.load()
                    size = im.size
            except Exception as e:  # Pillow raises several types for corrupt data
                raise DataError(f"{name}: image {path} cannot be decoded ({e}). Replace or delete it.") from e
            first = first or (size, path)
            if same_size and size != first[0]:
                raise DataError(f"{name}: image {path} is {size[0]}x{size[1]}, but {first[1]} is "
                                f"{first[0][0]}x{first[0][1]}. Pass resize= to bring all images to one size.")


def meta_mini_imagenet(folder=None, sub_folders=None, std_num_classes=None, examples_train=None,
                       examples_test=None, resize=84, one_hot_enc=True, load_all_images=False, h5=False,
                       split_folder=None, cache_size=5000, validate=True, download=False, name="Mini"):
    """Mini-ImageNet as ``Datasets(train, validation, test)`` of :class:`ImageNetMetaDataset`.

    Per split ``s`` in ``sub_folders`` (default ``("train", "val", "test")``) the first of these
    that exists in ``folder`` is used:

    1. a cache: ``mini-imagenet-cache-<s>.pkl`` / ``<s>.pkl`` (dict with ``image_data`` uint8
       (n, H, W, 3) and ``class_dict`` {wnid: indices}) or ``<s>.npz`` (``images`` + ``labels``);
    2. with ``h5=True``: ``<s>.h5`` with dataset ``"X"``, 600 images per class in order (h5py);
    3. a folder per class: ``<s>/<wnid>/*.jpg``;
    4. the Ravi & Larochelle CSV ``<s>.csv`` (``filename,label``; searched in ``folder`` then
       ``split_folder``) with the images in ``folder/images/``, ``folder/`` or ``folder/<s>/``.

    Args:
        folder: the folder (default: ``miniimagenet/``, then ``imagenet/mini_v3/``, in the datasets folder
            ``$DATASETS_FOLDER``, else ``~/.boml/datasets``).
        sub_folders: the splits to read.
        std_num_classes: ways N of the episodes.
        examples_train: support shots per class.
        examples_test: queries per class.
        resize: side of the square RGB images (LANCZOS), ``None`` to keep the native size.
        one_hot_enc: one-hot targets.
        load_all_images: decode everything up front (uint8) instead of lazily.
        h5: read ``<s>.h5`` files (needs h5py).
        split_folder: another folder searched for the ``<s>.csv`` files.
        cache_size: images kept by each split's LRU cache when lazy.
        validate: decode every image file once at load (sizes and decodability), so that a damaged file
            fails here rather than during training; remembered by the folder's fingerprint (paths,
            sizes and modification times of the files).
        download: accepted for symmetry with the other loaders; Mini-ImageNet cannot be downloaded, so when
            it is missing the error explains what to put where.
        name: name of the datasets.

    Returns:
        ``Datasets`` of the splits, in the order of ``sub_folders``.

    Raises:
        MissingDataError: no folder found (Mini-ImageNet cannot be downloaded; the message gives the layout).
        DataError: a damaged or unreadable image (named), an empty class, too few images per class.
    """
    folder = locate_dataset("miniimagenet", folder, download=download)
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
    check_shots(examples_train, examples_test, min_size, f"Mini-ImageNet at {folder}")
    if validate:
        class_files = [files for _, _, kw in out for files in kw.get("class_files") or ()]
        if class_files:
            validate_once("miniimagenet", _fingerprint(class_files) + f":{resize}",
                          lambda: _validate_image_files(class_files, name, resize is None))
    num_examples = episode_totals(std_num_classes, examples_train, examples_test)
    metas = [ImageNetMetaDataset(info=info, class_names=names, num_examples=num_examples, **common, **kw)
             for info, names, kw in out]
    return Datasets.from_list(metas)
