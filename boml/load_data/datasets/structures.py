"""N-way K-shot episode sampling of the data layer.

* :class:`MetaDataset` — a distribution over episodes (abstract ``generate_datasets``).
* :class:`ClassMetaDataset` — a ``MetaDataset`` over a list of image classes; it implements
  the episode sampler used by the synthetic, Omniglot and Mini-ImageNet meta-datasets.
* :class:`BatchQueueMock` — hands out meta-batches of episodes from one advancing RandomState.

Episode conventions (every ``ClassMetaDataset``):

* ``num_classes`` (N) classes are drawn without replacement; the label of a class is its
  position in that random draw.
* For each class ``k_train + k_test`` *distinct* images are drawn in one go, the first
  ``k_train`` go to the support set and the rest to the query set, so support and query never
  share an image (the original BOML rebuilt the pool per set and leaked support images into
  the query set).
* Images are float32 in ``[0, 1]`` with shape ``(n, H, W, C)``; targets are one-hot float32
  ``(n, N)`` when ``one_hot_enc`` (default) else int64 labels ``(n,)``.
* The order of the examples inside the support and inside the query set is shuffled.

The containers :class:`Dataset` and :class:`Datasets` live in :mod:`boml.load_data.datasets.containers`
and are importable from here, as in the original. Nothing here imports TensorFlow.
"""
import numbers

import numpy as np

from boml.errors import DataError, InvalidArgumentError
from boml.helpers import get_rand_state
from boml.load_data.datasets.containers import Dataset, Datasets
from boml.load_data.datasets.dl_utils import to_one_hot_enc

__all__ = ["Dataset", "Datasets", "MetaDataset", "ClassMetaDataset", "BatchQueueMock", "check_shots",
           "episode_totals"]


def check_shots(examples_train, examples_test, min_class_size, what):
    """Checks that ``examples_train`` support + ``examples_test`` query images fit every class.

    Args:
        examples_train: support shots per class (None: not fixed yet), at least 1.
        examples_test: queries per class (None: not fixed yet), at least 0.
        min_class_size: images in the smallest class of the data.
        what: names the data in the message.

    Raises:
        InvalidArgumentError: a negative or zero count.
        DataError: the smallest class has fewer images than an episode needs.
    """
    if examples_train is not None and examples_train < 1:
        raise InvalidArgumentError(f"examples_train must be >= 1; got {examples_train!r}.")
    if examples_test is not None and examples_test < 0:
        raise InvalidArgumentError(f"examples_test must be >= 0; got {examples_test!r}.")
    need = (examples_train or 0) + (examples_test or 0)
    if need > min_class_size:
        raise DataError(
            f"examples_train={examples_train} + examples_test={examples_test} = {need} images per class, but {what} "
            f"has only {min_class_size} images in its smallest class. Ask for fewer shots/queries."
        )


def episode_totals(num_classes, examples_train, examples_test):
    """``(support, query)`` totals of an N-way episode, or None when N or the shots are not fixed."""
    if num_classes is None or examples_train is None:
        return None
    return (num_classes * examples_train, num_classes * (examples_test or 0))


def _normalize_num_examples(num_examples):
    """Returns ``(n_support, n_query)`` totals from an int, a pair or None."""
    if num_examples is None:
        return None
    if isinstance(num_examples, numbers.Integral):
        num_examples = (int(num_examples), 0)
    try:
        vals = tuple(int(v) for v in num_examples)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"num_examples must be an int or a (support, query) pair of ints; got {num_examples!r}."
        ) from None
    if len(vals) == 1:
        vals = (vals[0], 0)
    if len(vals) != 2 or any(v < 0 for v in vals):
        raise InvalidArgumentError(
            f"num_examples must be (n_support, n_query) totals >= 0; got {num_examples!r}."
        )
    return vals


class MetaDataset:
    """A distribution over few-shot episodes.

    Args:
        info: dict of information (e.g. ``{"all_classes": ...}``).
        name: name of the meta-dataset (also used by the network registry).
        num_classes: default number of classes N per episode.
        num_examples: default ``(n_support, n_query)`` *totals* per episode, i.e.
            ``(N * k_train, N * k_test)``; an int means a support set only.
        one_hot_enc: one-hot float32 targets (default) or int64 labels.
    """

    def __init__(self, info=None, name=None, num_classes=None, num_examples=None, one_hot_enc=True,
                 *args, **kwargs):
        self.info = dict(info) if info else {}
        self.name = name
        self.num_classes = None if num_classes is None else int(num_classes)
        self.num_examples = _normalize_num_examples(num_examples)
        self.one_hot_enc = bool(one_hot_enc)
        self._cached_dims = None

    # -- episode generation -------------------------------------------------------------------
    def generate_datasets(self, rand=None, num_classes=None, num_examples=None):
        """Samples one episode: ``Datasets(train=support, test=query)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement generate_datasets")

    def generate(self, count, batch_size=1, rand=None):
        """Yields ``count`` items: a ``Datasets`` episode if ``batch_size == 1`` else a list of them.

        All episodes come from one RandomState built from ``rand`` that advances throughout.
        """
        rand = get_rand_state(rand)
        count, batch_size = int(count), int(batch_size)
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1; got {batch_size}.")
        for _ in range(count):
            if batch_size == 1:
                yield self.generate_datasets(rand=rand)
            else:
                yield self.generate_batch(batch_size, rand=rand)

    def generate_batch(self, batch_size, rand=None):
        """A list of ``batch_size`` episodes drawn from one RandomState built from ``rand``."""
        rand = get_rand_state(rand)
        return [self.generate_datasets(rand=rand) for _ in range(int(batch_size))]

    # -- shapes ---------------------------------------------------------------------------------
    def _dims_from_private_episode(self):
        # Fallback for subclasses that cannot compute the shapes: sample ONE episode with a
        # private fixed RandomState (never the caller's), and cache the result.
        if self._cached_dims is None:
            ep = self.generate_datasets(rand=np.random.RandomState(0))
            self._cached_dims = (ep.train.dim_data, ep.train.dim_target)
        return self._cached_dims

    @property
    def dim_data(self):
        """Shape of one example (computed without consuming any randomness)."""
        return self._dims_from_private_episode()[0]

    @property
    def dim_target(self):
        """Size of the target vector: N when one-hot, else 1."""
        if self.num_classes is not None:
            return self.num_classes if self.one_hot_enc else 1
        return self._dims_from_private_episode()[1]

    @property
    def examples_train(self):
        """Support examples per class (``num_examples[0] // num_classes``) or None."""
        if self.num_examples is None or not self.num_classes:
            return None
        return self.num_examples[0] // self.num_classes

    @property
    def examples_test(self):
        """Query examples per class (``num_examples[1] // num_classes``) or None."""
        if self.num_examples is None or not self.num_classes:
            return None
        return self.num_examples[1] // self.num_classes

    def __repr__(self):
        return (f"{type(self).__name__}(name={self.name!r}, num_classes={self.num_classes}, "
                f"num_examples={self.num_examples})")


class ClassMetaDataset(MetaDataset):
    """A ``MetaDataset`` over a list of classes of images, with a leak-free episode sampler.

    Subclasses provide :attr:`class_names`, :attr:`image_shape`, :meth:`class_size` and
    :meth:`load_images`. ``load_images`` may return uint8 (scaled by 1/255) or floats in [0, 1].
    """

    @property
    def class_names(self):
        raise NotImplementedError

    @property
    def image_shape(self):
        raise NotImplementedError

    @property
    def n_total_classes(self):
        return len(self.class_names)

    def class_size(self, c):
        """Number of images of class index ``c``."""
        raise NotImplementedError

    def load_images(self, c, indices):
        """Images ``indices`` of class index ``c`` as an array ``(len(indices),) + image_shape``."""
        raise NotImplementedError

    @property
    def dim_data(self):
        return tuple(int(s) for s in self.image_shape)

    def _as_float(self, images):
        images = np.asarray(images)
        if images.dtype == np.uint8:
            return images.astype(np.float32) / np.float32(255.0)
        if images.dtype == np.bool_:
            return images.astype(np.float32)
        return images.astype(np.float32, copy=False)

    def _per_class_counts(self, total, n_classes, rand):
        per, extra = divmod(int(total), n_classes)
        counts = np.full(n_classes, per, dtype=np.int64)
        if extra:
            counts[rand.choice(n_classes, extra, replace=False)] += 1
        return counts

    def generate_datasets(self, rand=None, num_classes=None, num_examples=None):
        rand = get_rand_state(rand)
        n_cls = int(num_classes if num_classes is not None else (self.num_classes or 0))
        sizes = _normalize_num_examples(num_examples if num_examples is not None else self.num_examples)
        if n_cls < 1:
            raise InvalidArgumentError(
                f"{self.name}: num_classes must be >= 1; "
                f"got {num_classes if num_classes is not None else self.num_classes!r}. "
                "Set std_num_classes / num_classes."
            )
        if sizes is None or sizes[0] < 1:
            raise InvalidArgumentError(
                f"{self.name}: num_examples must give at least one support example; got {sizes!r}. "
                "Set examples_train >= 1."
            )
        if n_cls > self.n_total_classes:
            raise DataError(
                f"{self.name}: an episode needs {n_cls} classes but the split has only "
                f"{self.n_total_classes}. Use fewer ways or a larger split."
            )
        classes = rand.choice(self.n_total_classes, n_cls, replace=False)
        n_sup = self._per_class_counts(sizes[0], n_cls, rand)
        n_que = self._per_class_counts(sizes[1], n_cls, rand)

        sup_x, sup_y, sup_info, que_x, que_y, que_info = [], [], [], [], [], []
        names = self.class_names
        for pos, c in enumerate(classes):
            c = int(c)
            avail = int(self.class_size(c))
            need = int(n_sup[pos] + n_que[pos])
            if need > avail:
                raise DataError(
                    f"{self.name}: class {names[c]!r} has {avail} images but an episode needs {need} "
                    f"({n_sup[pos]} support + {n_que[pos]} query). Ask for fewer examples_train/examples_test."
                )
            # ONE draw of distinct images, split into support and query: no overlap possible.
            idx = rand.choice(avail, need, replace=False)
            imgs = self._as_float(self.load_images(c, idx))
            k = int(n_sup[pos])
            sup_x.append(imgs[:k])
            que_x.append(imgs[k:])
            sup_y.extend([pos] * k)
            que_y.extend([pos] * (need - k))
            sup_info.extend({"name": names[c], "label": pos, "class_index": c, "image_index": int(i)}
                            for i in idx[:k])
            que_info.extend({"name": names[c], "label": pos, "class_index": c, "image_index": int(i)}
                            for i in idx[k:])

        info = {"all_classes": [names[int(c)] for c in classes], "class_indices": classes.copy()}

        def _make(xs, ys, sinfo):
            if not ys:
                return None
            x = np.concatenate(xs)
            y = np.asarray(ys, dtype=np.int64)
            perm = rand.permutation(len(y))
            x, y = x[perm], y[perm]
            sinfo = [sinfo[i] for i in perm]
            target = to_one_hot_enc(y, n_cls) if self.one_hot_enc else y
            return Dataset(x, target, sample_info=sinfo, info=info, name=self.name)

        support = _make(sup_x, sup_y, sup_info)
        query = _make(que_x, que_y, que_info)
        return Datasets(train=support, test=query)


class BatchQueueMock:
    """Hands out episodes of ``metadataset`` from ONE RandomState that keeps advancing.

    The methods keep the meaning they had in the original BOML:

    * :meth:`get_all_batches` gives ``n_batches`` items of ``batch_size`` episodes each
      (a ``Datasets`` episode per item when ``batch_size == 1``, else a list);
    * :meth:`get_single_batch` gives a list of ``n_batches`` episodes, drawn one at a time
      (``batch_size`` plays no role in it, as in the original).

    So an original-style training loop over ``MBS`` per-task experiments reads
    ``utils.feed_dicts(BatchQueueMock(metadataset, 1, MBS, rand).get_all_batches()[0], exs)``,
    and ``next(queue)`` gives one meta-batch of ``batch_size`` episodes (for a batched
    experiment). The original README example recreated the queue (and a seed-1
    RandomState) every iteration and so trained on the same episode forever; a queue
    kept across iterations gives new episodes at every call, reproducibly from ``rand``.

    Args:
        metadataset: a :class:`MetaDataset`.
        n_batches: items of :meth:`get_all_batches`, episodes of :meth:`get_single_batch`.
        batch_size: episodes per item of :meth:`get_all_batches` and per ``next(queue)``.
        rand: seed or ``numpy.random.RandomState`` (shared and advanced by every call).

    Raises:
        InvalidArgumentError: ``n_batches`` or ``batch_size`` is below 1.
    """

    def __init__(self, metadataset, n_batches, batch_size, rand=None):
        if int(n_batches) < 1 or int(batch_size) < 1:
            raise InvalidArgumentError(
                f"BatchQueueMock needs n_batches >= 1 and batch_size >= 1; got {n_batches!r}, {batch_size!r}."
            )
        self.metadataset = metadataset
        self.n_batches = int(n_batches)
        self.batch_size = int(batch_size)
        self.rand = get_rand_state(rand)

    def get_all_batches(self):
        """``n_batches`` items: a ``Datasets`` episode each if ``batch_size == 1``, else lists of ``batch_size``."""
        return list(self.metadataset.generate(self.n_batches, self.batch_size, self.rand))

    def get_single_batch(self):
        """A list of ``n_batches`` new episodes (the original's semantics: ``batch_size`` is not used)."""
        return list(self.metadataset.generate(self.n_batches, 1, self.rand))

    def __iter__(self):
        return self

    def __next__(self):
        """One meta-batch: a list of ``batch_size`` new episodes."""
        return self.metadataset.generate_batch(self.batch_size, self.rand)
