"""``BOMLExperiment``: the placeholders and bookkeeping of one (batch of) task(s)."""
import numpy as np
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError, ShapeError
from boml.graph_mode import check_graph_mode


def _as_shape(dim):
    if dim is None:
        return ()
    if isinstance(dim, (int, np.integer)):
        return (int(dim),)
    return tuple(int(d) for d in dim)


class BOMLExperiment:
    """Placeholders ``x, y`` (support) and ``x_, y_`` (query) of a task, plus its model and losses.

    The objectives are always written for ONE task on ``x, y, x_, y_``. With
    ``meta_batch_size`` set, the experiment also owns placeholders with a task
    axis (``x_batch`` ...) and ``BOMLOptimizer`` maps the task's computation over
    that axis inside the graph: a meta-batch of any size costs one graph copy.
    Without it (the original API), one experiment is one task, fed directly.

    Args:
        datasets: a ``Datasets`` of ``MetaDataset`` (shapes are read from
            ``datasets.train``) or None together with ``dim_data``/``dim_target``.
        dtype: data type of the input placeholders.
        meta_batch_size: None (one task) or the number of tasks fed per run
            (any number can be fed; the value is the default of ``generate``).
        dim_data: shape of one example (e.g. ``(28, 28, 1)``) when no datasets.
        dim_target: number of classes (or target size) when no datasets.
        name: name scope of the placeholders.
        episode_sizes: ``(n_support, n_query)`` examples per task of the
            meta-training episodes of a batched experiment, ``"auto"`` (default:
            ``datasets.train.num_examples`` when the meta-dataset declares it) or
            None (any size). Known sizes make the shapes of the meta-gradient
            graph static, which builds and starts faster; ``BOMLOptimizer.run``
            then checks the fed episodes against them. Evaluation graphs
            (``BOMLOptimizer.adapted``) accept any size either way.

    Attributes:
        x, y, x_, y_: per-task placeholders the objectives are built on.
        model: the base learner (set by the user).
        errors, scores, optimizers: dicts for the user's losses, metrics and ops.
    """

    def __init__(self, datasets=None, dtype=tf.float32, meta_batch_size=None, dim_data=None, dim_target=None,
                 name="experiment", episode_sizes="auto"):
        check_graph_mode("BOMLExperiment")
        if datasets is not None:
            train = datasets.train if hasattr(datasets, "train") else datasets
            dim_data = train.dim_data if dim_data is None else dim_data
            dim_target = train.dim_target if dim_target is None else dim_target
        if dim_data is None or dim_target is None:
            raise InvalidArgumentError(
                "BOMLExperiment needs the shape of the data: pass datasets=<Datasets of MetaDataset> or both "
                f"dim_data and dim_target; received dim_data={dim_data!r}, dim_target={dim_target!r}."
            )
        if meta_batch_size is not None and (not isinstance(meta_batch_size, (int, np.integer))
                                            or isinstance(meta_batch_size, bool) or meta_batch_size < 1):
            raise InvalidArgumentError(
                f"meta_batch_size must be None (one task per experiment) or a positive integer; "
                f"received {meta_batch_size!r}."
            )
        self.datasets = datasets
        self.dtype = dtype
        self.meta_batch_size = meta_batch_size
        self.dim_data = _as_shape(dim_data)
        self.dim_target = int(_as_shape(dim_target)[-1]) if _as_shape(dim_target) else 1
        with tf.name_scope(name):
            self.x = tf.placeholder(dtype, (None,) + self.dim_data, name="x")
            self.y = tf.placeholder(dtype, (None, self.dim_target), name="y")
            self.x_ = tf.placeholder(dtype, (None,) + self.dim_data, name="x_")
            self.y_ = tf.placeholder(dtype, (None, self.dim_target), name="y_")
            if self.is_batched:
                self.x_batch = tf.placeholder(dtype, (None, None) + self.dim_data, name="x_batch")
                self.y_batch = tf.placeholder(dtype, (None, None, self.dim_target), name="y_batch")
                self.x__batch = tf.placeholder(dtype, (None, None) + self.dim_data, name="x__batch")
                self.y__batch = tf.placeholder(dtype, (None, None, self.dim_target), name="y__batch")
        self.episode_sizes = _episode_sizes(episode_sizes, datasets) if self.is_batched else None
        self.model = None
        #: Set by a vectorized meta-training map (``vectorize_tasks``), whose task axis is static:
        #: meta-training feeds must then hold exactly ``meta_batch_size`` tasks.
        self.fixed_task_count = False
        self.errors = {}
        self.scores = {}
        self.optimizers = {}

    @property
    def is_batched(self):
        """True when the placeholders carry a task axis (``meta_batch_size`` given)."""
        return self.meta_batch_size is not None

    @property
    def task_placeholders(self):
        return [self.x, self.y, self.x_, self.y_]

    @property
    def batch_placeholders(self):
        if not self.is_batched:
            raise InvalidArgumentError("This experiment has no task axis; create it with meta_batch_size=B.")
        return [self.x_batch, self.y_batch, self.x__batch, self.y__batch]

    def with_episode_shapes(self, elements):
        """One task's ``(x, y, x_, y_)`` slices with the meta-training sizes made static.

        Returns ``elements`` unchanged when ``episode_sizes`` is None; otherwise
        each slice gets a runtime-checked static leading dimension.
        """
        if self.episode_sizes is None:
            return list(elements)
        support, query = self.episode_sizes
        return [tf.ensure_shape(e, [n] + e.shape.as_list()[1:])
                for e, n in zip(elements, (support, support, query, query))]

    def check_training_feed(self, feed):
        """Raises ``ShapeError`` if ``feed`` does not fit the meta-training graph.

        That is: episodes of other sizes than ``episode_sizes``, or (with ``fixed_task_count``)
        another number of tasks than ``meta_batch_size``.
        """
        if self.fixed_task_count:
            for placeholder in self.batch_placeholders:
                shape = np.shape(feed[placeholder]) if feed.get(placeholder) is not None else None
                if shape is not None and (not shape or shape[0] != self.meta_batch_size):
                    raise ShapeError(
                        f"This experiment meta-trains {self.meta_batch_size} tasks at a time in a vectorized task "
                        f"map (vectorize_tasks=True), but the fed batch {placeholder.name} has shape {shape}. "
                        f"Feed meta-batches of meta_batch_size={self.meta_batch_size} tasks, or build the upper "
                        f"problem with vectorize_tasks=False to accept any number."
                    )
        if self.episode_sizes is None:
            return
        support, query = self.episode_sizes
        for placeholder, size, what in ((self.x_batch, support, "support"), (self.y_batch, support, "support"),
                                        (self.x__batch, query, "query"), (self.y__batch, query, "query")):
            value = feed.get(placeholder)
            shape = np.shape(value) if value is not None else None
            if shape is not None and (len(shape) < 2 or shape[1] != size):
                raise ShapeError(
                    f"This experiment meta-trains on episodes of {support} support and {query} query examples per "
                    f"task (episode_sizes={self.episode_sizes}), but the fed {what} batch has shape {shape}. "
                    f"Sample training episodes from the dataset the experiment was built with, or create it with "
                    f"BOMLExperiment(..., episode_sizes=None) to accept any size."
                )

    def feed_dicts(self, episodes):
        """``(inner_feed_dict, outer_feed_dict)`` for an episode or a list of episodes.

        An episode is a ``Datasets`` with ``train`` (support) and ``test`` (query).

        Raises:
            ShapeError: an episode's arrays do not match the placeholders, or the
                episodes of a batch differ in size.
        """
        if not isinstance(episodes, (list, tuple)):
            episodes = [episodes]
        if not episodes:
            raise InvalidArgumentError("feed_dicts received an empty list of episodes; sample at least one.")
        if not self.is_batched:
            support, query = _split(episodes[0])
            self._check(support.data, support.target, "support")
            self._check(query.data, query.target, "query")
            return ({self.x: support.data, self.y: support.target},
                    {self.x_: query.data, self.y_: query.target})
        parts = [_split(e) for e in episodes]
        arrays = []
        for index, (which, field) in enumerate([(0, "data"), (0, "target"), (1, "data"), (1, "target")]):
            values = [getattr(p[which], field) for p in parts]
            shapes = {np.shape(v) for v in values}
            if len(shapes) != 1:
                raise ShapeError(
                    f"The episodes of one meta-batch must have equal sizes; received {which and 'query' or 'support'} "
                    f"{field} shapes {sorted(shapes)}. Sample every episode with the same ways and shots."
                )
            arrays.append(np.stack(values))
        for a, b, what in ((arrays[0], arrays[1], "support"), (arrays[2], arrays[3], "query")):
            for task in range(a.shape[0]):
                self._check(a[task], b[task], what)
        return ({self.x_batch: arrays[0], self.y_batch: arrays[1]},
                {self.x__batch: arrays[2], self.y__batch: arrays[3]})

    def _check(self, data, target, what):
        data_shape, target_shape = np.shape(data), np.shape(target)
        if tuple(data_shape[1:]) != self.dim_data:
            raise ShapeError(
                f"The {what} data has examples of shape {tuple(data_shape[1:])}, but the experiment expects "
                f"{self.dim_data}. Build the experiment from the same dataset that generates the episodes."
            )
        if len(target_shape) != 2 or target_shape[1] != self.dim_target or target_shape[0] != data_shape[0]:
            raise ShapeError(
                f"The {what} targets have shape {target_shape}; expected ({data_shape[0]}, {self.dim_target}) "
                f"one-hot rows, one per example (use one_hot_enc=True)."
            )


def _episode_sizes(value, datasets):
    if isinstance(value, str) and value == "auto":
        train = getattr(datasets, "train", datasets)
        sizes = getattr(train, "num_examples", None)
        if isinstance(sizes, tuple) and len(sizes) == 2 and all(isinstance(v, int) and v > 0 for v in sizes):
            return sizes
        return None
    if value is None:
        return None
    try:
        sizes = tuple(value)
    except TypeError:
        sizes = ()
    if len(sizes) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                                  for v in sizes):
        raise InvalidArgumentError(
            f"episode_sizes must be 'auto', None or a pair (n_support, n_query) of positive integers (examples per "
            f"task, all classes together); received {value!r}."
        )
    return (int(sizes[0]), int(sizes[1]))


def _split(episode):
    train = getattr(episode, "train", None)
    test = getattr(episode, "test", None)
    if train is None or test is None:
        raise InvalidArgumentError(
            f"An episode must be a Datasets with train (support) and test (query) sets; received {episode!r}."
        )
    return train, test
