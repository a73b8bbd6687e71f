"""Small datasets written in the real on-disk layouts, for the loader tests (no real data needed).

* Omniglot: ``<Alphabet>/<characterNN>/<id>_<drawer>.png`` (1-bit PNGs, 28x28 like ``omniglot_resized``,
  or 105x105 like the official ``images_background.zip`` / ``images_evaluation.zip``), the
  ``omniglot_resized.tar.gz`` archive, the official zips. The alphabets and characters are real names
  of the Vinyals split, so the shipped split files apply to them.
* MNIST: the four IDX files, gzip-compressed, with the standard names.
* Mini-ImageNet: ``<split>/<wnid>/*.jpg`` class folders, or the Ravi & Larochelle ``<split>.csv`` with
  the JPEGs in ``images/``.
"""
import gzip
import io
import os
import struct
import tarfile
import zipfile

import numpy as np
from PIL import Image

#: ``{alphabet: ([characters], official set, Vinyals split)}``: real Omniglot names.
OMNIGLOT_CHARACTERS = {
    "Alphabet_of_the_Magi": (["character01", "character02", "character03"], "background", "train"),
    "Angelic": (["character01", "character02"], "evaluation", "train"),
    "Armenian": (["character01", "character02"], "background", "val"),
    "Kannada": (["character01", "character02"], "evaluation", "test"),
}


def omniglot_classes(vinyals_split=None, official_set=None):
    """The generated characters (``"Alphabet/characterNN"``), optionally of one split or official set."""
    return sorted(f"{a}/{c}" for a, (chars, group, split) in OMNIGLOT_CHARACTERS.items() for c in chars
                  if vinyals_split in (None, split) and official_set in (None, group))


def drawing(seed, side=28):
    """A uint8 image, 255 background and 0 strokes: a horizontal and a vertical bar placed by ``seed``."""
    rng = np.random.default_rng(seed)
    arr = np.full((side, side), 255, np.uint8)
    width = max(2, side // 10)
    r, c = rng.integers(2, side - 2 * width, size=2)
    arr[r:r + width, 2:side - 2] = 0
    arr[2:side - 2, c:c + width] = 0
    return arr


def png_bytes(arr, mode="1"):
    """PNG bytes of ``arr`` saved in Pillow ``mode`` (Omniglot's files are 1-bit, mode "1")."""
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def omniglot_members(n_img=4, side=28, official_set=None):
    """``[(relative path, png bytes, drawing)]`` of the generated characters."""
    out, seed = [], 0
    for alphabet, (chars, group, _) in sorted(OMNIGLOT_CHARACTERS.items()):
        if official_set is not None and group != official_set:
            continue
        for char in chars:
            for i in range(n_img):
                seed += 1
                arr = drawing(seed, side)
                out.append((f"{alphabet}/{char}/{seed:04d}_{i + 1:02d}.png", png_bytes(arr), arr))
    return out


def write_omniglot_tree(root, n_img=4, side=28):
    """Writes the ``omniglot_resized`` layout under ``root``; returns ``root``."""
    for rel, data, _ in omniglot_members(n_img, side):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return str(root)


def write_omniglot_tar(path, n_img=4):
    """Writes ``omniglot_resized.tar.gz`` (top folder ``omniglot_resized/``) at ``path``; returns it."""
    with tarfile.open(path, "w:gz") as tar:
        for rel, data, _ in omniglot_members(n_img):
            info = tarfile.TarInfo("omniglot_resized/" + rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def write_official_zips(folder, n_img=4):
    """Writes ``images_background.zip`` and ``images_evaluation.zip`` (105x105) in ``folder``.

    Returns:
        ``{relative path inside the set: the 105x105 drawing}``.
    """
    os.makedirs(folder, exist_ok=True)
    drawings = {}
    for group in ("background", "evaluation"):
        with zipfile.ZipFile(os.path.join(folder, f"images_{group}.zip"), "w", zipfile.ZIP_DEFLATED) as z:
            for rel, data, arr in omniglot_members(n_img, side=105, official_set=group):
                z.writestr(f"images_{group}/{rel}", data)
                drawings[rel] = arr
    return drawings


def idx_bytes(arr):
    """The IDX encoding of a uint8 array."""
    return struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def mnist_arrays(n_train=300, n_test=100, seed=0):
    """``(x_train, y_train, x_test, y_test)``: 28x28 uint8 images of 10 separable classes.

    Each class has a fixed random prototype; an image is its prototype plus noise, so a linear
    classifier separates the classes.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, size=(10, 28, 28))
    out = []
    for n in (n_train, n_test):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        noise = rng.normal(0, 40, size=(n, 28, 28))
        out += [np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels.astype(np.uint8)]
    return tuple(out)


def write_mnist(folder, n_train=300, n_test=100, seed=0):
    """Writes the four gzipped IDX files in ``folder``; returns the arrays of :func:`mnist_arrays`."""
    os.makedirs(folder, exist_ok=True)
    arrays = mnist_arrays(n_train, n_test, seed)
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
    for name, arr in zip(names, arrays):
        with gzip.GzipFile(os.path.join(folder, name), "wb", mtime=0) as f:
            f.write(idx_bytes(arr))
    return arrays


MINI_CLASSES = {"train": ["n01532829", "n01558993", "n01704323", "n01749939"], "val": ["n01855672", "n02091244"],
                "test": ["n01930112", "n01981276", "n02099601"]}


def mini_image(seed, size=(40, 30)):
    """A random RGB uint8 image of ``size`` (width, height)."""
    return np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)


def write_mini_tree(root, n_img=6, size=(40, 30)):
    """Writes ``<split>/<wnid>/<wnid><index>.jpg``; returns ``{path: image}`` (before JPEG compression)."""
    images, seed = {}, 0
    for split, wnids in MINI_CLASSES.items():
        for wnid in wnids:
            d = os.path.join(root, split, wnid)
            os.makedirs(d)
            for i in range(n_img):
                seed += 1
                path = os.path.join(d, f"{wnid}{i + 1:08d}.jpg")
                images[path] = mini_image(seed, size)
                Image.fromarray(images[path]).save(path, format="JPEG", quality=95)
    return images


def write_mini_csv_layout(root, n_img=4, size=(40, 30)):
    """Writes the Ravi & Larochelle CSVs (``filename,label``) with the JPEGs in ``root/images``."""
    os.makedirs(os.path.join(root, "images"))
    seed = 0
    for split, wnids in MINI_CLASSES.items():
        rows = ["filename,label"]
        for wnid in wnids:
            for i in range(n_img):
                seed += 1
                name = f"{wnid}{i + 1:08d}.jpg"
                Image.fromarray(mini_image(seed, size)).save(os.path.join(root, "images", name), format="JPEG")
                rows.append(f"{name},{wnid}")
        with open(os.path.join(root, f"{split}.csv"), "w") as f:
            f.write("\n".join(rows) + "\n")
    return str(root)


def flip_middle_byte(path):
    """Inverts the middle byte of the file at ``path`` (a damaged download); returns the original bytes."""
    with open(path, "rb") as stream:
        raw = stream.read()
    damaged = bytearray(raw)
    damaged[len(damaged) // 2] ^= 0xFF
    with open(path, "wb") as stream:
        stream.write(bytes(damaged))
    return raw
