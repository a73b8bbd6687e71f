"""A small, learnable few-shot benchmark generated in memory from a seed (no files, no network).

Every class has a random blocky binary *prototype* image; its examples are the prototype plus
Gaussian pixel noise (and a random shift of up to one pixel), clipped to ``[0, 1]`` and stored
as uint8. Classes are generated from ``(seed, global class id)``, so the train / validation /
test splits made by :func:`meta_synthetic` have disjoint classes and are identical on every run.
"""
import numpy as np

from boml.errors import InvalidArgumentError
from boml.load_data.datasets.structures import ClassMetaDataset, Datasets

__all__ = ["SyntheticMetaDataset", "meta_synthetic"]


def _check_shape(image_shape):
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise InvalidArgumentError(f"image_shape must be a tuple (H, W, C); got {image_shape!r}.") from None
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or min(shape) < 1:
        raise InvalidArgumentError(f"image_shape must be (H, W, C) with positive sizes; got {image_shape!r}.")
    return shape


class SyntheticMetaDataset(ClassMetaDataset):
    """In-memory synthetic N-way K-shot meta-dataset.

    Args:
        num_classes: ways N per episode.
        examples_train: support shots per class.
        examples_test: query examples per class.
        image_shape: (H, W, C) of the images.
        n_total_classes: number of classes in this meta-dataset.
        noise: standard deviation of the pixel noise added to the prototype.
        seed: seed of the data (not of the episodes: those come from ``rand``).
        name: name of the meta-dataset.
        one_hot_enc: one-hot float32 targets (default) or int64 labels.
        examples_per_class: images per class (default 20, like Omniglot).
        class_offset: global id of the first class; splits use disjoint ranges.
        info: optional dict of information.

    Raises:
        InvalidArgumentError: a size, the noise or the shot counts are out of range.
    """

    def __init__(self, num_classes=5, examples_train=1, examples_test=15, image_shape=(28, 28, 1),
                 n_total_classes=64, noise=0.3, seed=0, name="Synthetic", one_hot_enc=True,
                 examples_per_class=20, class_offset=0, info=None):
        shape = _check_shape(image_shape)
        n_total_classes, examples_per_class = int(n_total_classes), int(examples_per_class)
        if n_total_classes < 1 or examples_per_class < 1:
            raise InvalidArgumentError(
                f"SyntheticMetaDataset needs n_total_classes >= 1 and examples_per_class >= 1; got "
                f"{n_total_classes}, {examples_per_class}."
            )
        if noise < 0:
            raise InvalidArgumentError(f"noise must be >= 0; got {noise!r}.")
        if examples_train < 1 or examples_test < 0:
            raise InvalidArgumentError(
                f"examples_train must be >= 1 and examples_test >= 0; got {examples_train!r}, {examples_test!r}."
            )
        super().__init__(
            info=info, name=name, num_classes=num_classes,
            num_examples=(num_classes * examples_train, num_classes * examples_test),
            one_hot_enc=one_hot_enc,
        )
        self.noise = float(noise)
        self.seed = int(seed)
        self.class_offset = int(class_offset)
        self._shape = shape
        ids = range(self.class_offset, self.class_offset + n_total_classes)
        self._names = [f"synthetic/class{g:05d}" for g in ids]
        self.prototypes = np.stack([self._prototype(g) for g in ids])
        self.images = np.stack([self._examples(g, p, examples_per_class)
                                for g, p in zip(ids, self.prototypes)])  # (C, K, H, W, ch) uint8
        self.info.setdefault("all_classes", list(self._names))

    def _prototype(self, g):
        h, w, c = self._shape
        rng = np.random.default_rng([self.seed, g, 0])
        block = 4 if min(h, w) >= 8 else 1
        coarse = rng.random((-(-h // block), -(-w // block), c)) < 0.3
        proto = np.repeat(np.repeat(coarse, block, axis=0), block, axis=1)[:h, :w]
        return proto.astype(np.float32)

    def _examples(self, g, proto, k):
        rng = np.random.default_rng([self.seed, g, 1])
        shifts = rng.integers(-1, 2, size=(k, 2))
        noise = rng.standard_normal((k,) + self._shape, dtype=np.float32)
        imgs = np.stack([np.roll(proto, (int(a), int(b)), axis=(0, 1)) for a, b in shifts])
        imgs = np.clip(imgs + np.float32(self.noise) * noise, 0.0, 1.0)
        return np.round(imgs * 255.0).astype(np.uint8)

    @property
    def class_names(self):
        return self._names

    @property
    def image_shape(self):
        return self._shape

    def class_size(self, c):
        return self.images.shape[1]

    def load_images(self, c, indices):
        return self.images[c, np.asarray(indices, dtype=np.int64)]


def meta_synthetic(num_classes=5, examples_train=1, examples_test=15, image_shape=(28, 28, 1),
                   n_classes=(64, 16, 20), noise=0.3, seed=0, one_hot_enc=True, examples_per_class=20,
                   name="Synthetic"):
    """``Datasets(train, validation, test)`` of :class:`SyntheticMetaDataset` with disjoint classes.

    Args:
        num_classes, examples_train, examples_test, image_shape: as for :class:`SyntheticMetaDataset`.
        noise, seed, one_hot_enc, examples_per_class, name: as for :class:`SyntheticMetaDataset`.
        n_classes: number of classes of the (train, validation, test) splits.

    Returns:
        The ``Datasets`` of the three meta-datasets.

    Raises:
        InvalidArgumentError: ``n_classes`` does not have three entries, or another argument is out of range.
    """
    if len(tuple(n_classes)) != 3:
        raise InvalidArgumentError(f"n_classes must give (train, validation, test) counts; got {n_classes!r}.")
    parts, offset = [], 0
    for split, n in zip(("train", "validation", "test"), n_classes):
        parts.append(SyntheticMetaDataset(
            num_classes=num_classes, examples_train=examples_train, examples_test=examples_test,
            image_shape=image_shape, n_total_classes=n, noise=noise, seed=seed, name=name,
            one_hot_enc=one_hot_enc, examples_per_class=examples_per_class, class_offset=offset,
            info={"split": split},
        ))
        offset += int(n)
    return Datasets.from_list(parts)
