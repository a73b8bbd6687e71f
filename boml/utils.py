"""Losses, metrics, regularizers and small helpers used with boml."""
import collections

import numpy as np
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError, ShapeError


# ------------------------------------------------------------------------------------ losses
def cross_entropy(pred, label, method=None):
    """Mean softmax cross-entropy between logits ``pred`` and one-hot ``label``.

    Args:
        pred: logits, shape (n, classes).
        label: one-hot (or probability) targets, same shape.
        method: ignored (accepted for compatibility with old BOML scripts).
    """
    _check_same_shape(pred, label, "cross_entropy")
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.stop_gradient(label), logits=pred))


def mse(pred, label, method=None):
    """Mean squared error ``mean((pred - label)^2)``."""
    _check_same_shape(pred, label, "mse")
    return tf.reduce_mean(tf.square(pred - label))


def classification_acc(pred, label):
    """Fraction of rows where ``argmax(pred) == argmax(label)``."""
    _check_same_shape(pred, label, "classification_acc")
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(pred, -1), tf.argmax(label, -1)), pred.dtype))


def get_L2Reg(var_list, rate=0.0):  # noqa: N802 - original name
    """``rate * sum_v ||v||^2 / 2`` over ``var_list`` (a weight-decay penalty)."""
    _check_rate(rate)
    if not var_list:
        return tf.constant(0.0)
    return rate * tf.add_n([tf.nn.l2_loss(v) for v in var_list])


def get_L1Reg(var_list, rate=0.0):  # noqa: N802 - original name
    """``rate * sum_v |v|_1`` over ``var_list``."""
    _check_rate(rate)
    if not var_list:
        return tf.constant(0.0)
    return rate * tf.add_n([tf.reduce_sum(tf.abs(v)) for v in var_list])


def _check_rate(rate):
    if isinstance(rate, (int, float)) and rate < 0:
        raise InvalidArgumentError(f"A regularization rate must be >= 0; received {rate!r}.")


def _check_same_shape(pred, label, what):
    pred_shape, label_shape = tf.TensorShape(getattr(pred, "shape", None)), tf.TensorShape(
        getattr(label, "shape", None))
    if not pred_shape.is_compatible_with(label_shape):
        raise ShapeError(
            f"{what}: predictions of shape {pred_shape} and labels of shape {label_shape} do not match. "
            f"Labels must be one-hot with one column per class (dataset one_hot_enc=True)."
        )


# ------------------------------------------------------------------------------------ feeds
def feed_dict(data_batch, ex):
    """Inner and outer feed dicts of one experiment for a batch of episodes.

    Args:
        data_batch: an episode (``Datasets`` with ``train`` = support and
            ``test`` = query) or a list of episodes. For a batched experiment the
            whole list is fed, for a per-task experiment the first episode.
        ex: the ``BOMLExperiment``.

    Returns:
        ``(inner_feed_dict, outer_feed_dict)``.
    """
    return ex.feed_dicts(data_batch)


def feed_dicts(dat_lst, exs):
    """Merged feed dicts of several experiments, one episode (or batch) each."""
    inner, outer = {}, {}
    if len(dat_lst) != len(exs):
        raise InvalidArgumentError(
            f"feed_dicts needs one episode per experiment; received {len(dat_lst)} episodes for {len(exs)} experiments."
        )
    for data, ex in zip(dat_lst, exs):
        i, o = ex.feed_dicts(data)
        inner.update(i)
        outer.update(o)
    return inner, outer


def run_on_episodes(session, tensors, experiment, meta_dataset, n_episodes, rand, batch_size=25):
    """Evaluates per-task ``tensors`` (e.g. from ``BOMLOptimizer.adapted``) on fresh episodes.

    Episodes are drawn from ``meta_dataset`` with ``rand`` in batches of at most
    ``batch_size`` fed to the batched ``experiment``; the same seed gives the
    same episodes.

    Returns:
        One float array of ``n_episodes`` values per tensor.

    Raises:
        InvalidArgumentError: ``n_episodes`` or ``batch_size`` is below 1.
    """
    if n_episodes < 1 or batch_size < 1:
        raise InvalidArgumentError(
            f"n_episodes and batch_size must be >= 1; received n_episodes={n_episodes!r}, batch_size={batch_size!r}."
        )
    rand = get_rand_state(rand)
    values = [[] for _ in tensors]
    done = 0
    while done < n_episodes:
        count = min(batch_size, n_episodes - done)
        inner_fd, outer_fd = experiment.feed_dicts(meta_dataset.generate_batch(count, rand=rand))
        for collected, result in zip(values, session.run(list(tensors), {**inner_fd, **outer_fd})):
            collected.extend(np.asarray(result, np.float64).ravel().tolist())
        done += count
    return [np.asarray(v) for v in values]


# ------------------------------------------------------------------------------------ helpers
def merge_dicts(*dicts):
    """A new dict with the items of ``dicts`` (later ones win); None entries are skipped."""
    merged = {}
    for d in dicts:
        if d:
            merged.update(d)
    return merged


merge_two_dicts = merge_dicts


def maybe_call(obj, *args, **kwargs):
    """``obj(*args, **kwargs)`` if ``obj`` is callable, else ``obj``."""
    return obj(*args, **kwargs) if callable(obj) else obj


def maybe_eval(a, ss=None):
    """Evaluates tensors in session ``ss`` (default session if None); other values pass through."""
    if isinstance(a, (tf.Tensor, tf.Variable)):
        return (ss or tf.get_default_session()).run(a)
    return a


def as_list(obj):
    """``obj`` as a list (None -> [], tuples and lists copied, anything else wrapped)."""
    if obj is None:
        return []
    if isinstance(obj, (list, tuple)):
        return list(obj)
    return [obj]


def as_tuple_or_list(obj):
    return obj if isinstance(obj, (list, tuple)) else [obj]


def vectorize_all(var_list):
    """Concatenation of the flattened tensors of ``var_list``."""
    return tf.concat([tf.reshape(v, [-1]) for v in var_list], axis=0)


def dot(a, b, name="dot"):
    """Inner product of two tensors of the same shape."""
    with tf.name_scope(name):
        return tf.reduce_sum(a * b)


def flatten_list(lst):
    return [item for sub in lst for item in as_list(sub)]


def get_rand_state(rand=None):
    """A ``numpy.random.RandomState`` from None, an int, a sequence of ints or a RandomState."""
    if isinstance(rand, np.random.RandomState):
        return rand
    if rand is None or isinstance(rand, (int, np.integer, list, tuple, np.ndarray)):
        return np.random.RandomState(rand)
    raise InvalidArgumentError(
        f"rand must be None, an int seed, a sequence of ints or a numpy RandomState; received {rand!r}."
    )


def set_gpu():
    """A session ConfigProto that grows GPU memory as needed and allows soft placement."""
    config = tf.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    return config


def mean_std_ci(measures, mul=1.0):
    """Mean, standard deviation and 95% confidence half-width of ``measures`` (times ``mul``)."""
    measures = np.asarray(measures, dtype=np.float64) * mul
    if measures.size == 0:
        raise InvalidArgumentError("mean_std_ci needs at least one measure; received none.")
    std = measures.std(ddof=1) if measures.size > 1 else 0.0
    return measures.mean(), std, 1.96 * std / np.sqrt(measures.size)


def isinteger(num):
    return isinstance(num, (int, np.integer)) and not isinstance(num, bool)


OrderedDict = collections.OrderedDict
