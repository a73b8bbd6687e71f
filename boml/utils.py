"""Losses, metrics, regularizers, feeds and the original BOML's ``boml.utils`` helpers.

The numpy helpers (``get_rand_state``, ``as_list``, ``as_tuple_or_list``, ``flatten_list``,
``maybe_call``, ``merge_dicts``, ``isinteger``, ``mean_std_ci``) are defined once in
:mod:`boml.helpers` and importable from here as in the original.

Besides boml's own helpers, this module keeps the names of the original BOML's
``boml.utils`` (``BatchQueueMock``, ``get_default_session``,
``remove_from_collection``, ``add_list``, ``maybe_add``, ``val_or_zero``,
``solve_int_or_generator``, ``save_obj``/``load_obj`` ...) with the original's
behaviour; where boml deliberately differs it is said in the docstring and in
the "Differences from the original BOML" page of the documentation.
"""
import collections
import io
import logging
import os
import pickle
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import DataError, InvalidArgumentError, ShapeError
from boml.helpers import (  # noqa: F401 - original boml.utils names, defined once in boml.helpers
    as_list,
    as_tuple_or_list,
    flatten_list,
    get_rand_state,
    isinteger,
    maybe_call,
    mean_std_ci,
    merge_dicts,
)
from boml.load_data.datasets.structures import BatchQueueMock  # noqa: F401 - original boml.utils name

logger = logging.getLogger(__name__)


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
merge_two_dicts = merge_dicts


def maybe_eval(a, ss=None):
    """Evaluates tensors in session ``ss`` (default session if None); other values pass through."""
    if isinstance(a, (tf.Tensor, tf.Variable)):
        return (ss or tf.get_default_session()).run(a)
    return a


def vectorize_all(var_list):
    """Concatenation of the flattened tensors of ``var_list``."""
    return tf.concat([tf.reshape(v, [-1]) for v in var_list], axis=0)


def dot(a, b, name="dot"):
    """Inner product of two tensors of the same shape."""
    with tf.name_scope(name):
        return tf.reduce_sum(a * b)


def set_gpu():
    """A session ConfigProto that grows GPU memory as needed and allows soft placement."""
    config = tf.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True
    return config


# ------------------------------------------------------------------------------------ original BOML helpers
# ``BatchQueueMock`` (imported above) is the original's ``boml.utils.BatchQueueMock``; it is the same class as
# ``boml.BatchQueueMock``.


def get_default_session():
    """The default ``tf.Session`` (the innermost ``with session:`` block), or None outside one."""
    return tf.get_default_session()


def remove_from_collection(key, *variables):
    """Removes ``variables`` from the graph collection ``key`` of the default graph.

    As in the original, a variable that is not in the collection is not an
    error: a warning naming the collection and the missing items is logged
    (the original printed it to stderr) and the others are removed.

    Args:
        key: the collection name, e.g. ``GraphKeys.GLOBAL_VARIABLES``.
        *variables: the tensors or variables to remove.
    """
    present = {id(v) for v in tf.get_collection(key)}
    missing = [v for v in variables if id(v) not in present]
    if missing:
        logger.warning("Collection %r does not contain %s; nothing removed for them.", key,
                       ", ".join(getattr(v, "name", repr(v)) for v in missing))
    extension.remove_from_collection(key, *variables)


def add_list(lst1, lst2):
    """Element-wise sum of two sequences: ``[a + b for a, b in zip(lst1, lst2)]``.

    Raises:
        InvalidArgumentError: the sequences have different lengths (the
            original asserted it).
    """
    lst1, lst2 = list(lst1), list(lst2)
    if len(lst1) != len(lst2):
        raise InvalidArgumentError(
            f"add_list sums two lists element by element, so they need the same length; received lengths "
            f"{len(lst1)} and {len(lst2)}."
        )
    return [a + b for a, b in zip(lst1, lst2)]


def maybe_add(a, b):
    """``a + b``, or ``a`` when ``b`` is None (e.g. an optional regularizer)."""
    return a if b is None else a + b


def val_or_zero(a, b):
    """``a``, or ``tf.zeros_like(b)`` when ``a`` is None (e.g. a missing gradient of ``b``)."""
    return tf.zeros_like(b) if a is None else a


def solve_int_or_generator(int_or_generator):
    """``range(n)`` for an integer ``n``; any other value (a range, a generator) is returned as is."""
    return range(int_or_generator) if isinteger(int_or_generator) else int_or_generator


def save_obj(file_path, obj):
    """Pickles ``obj`` to ``file_path`` (the original's results files, e.g. ``results.pickle``).

    The file is written to a temporary file in the same folder and then renamed,
    so an interrupted run never leaves a truncated file behind.

    Args:
        file_path: destination path (its folder must exist).
        obj: a picklable object.
    """
    folder = os.path.dirname(os.path.abspath(file_path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".save_obj-")
    try:
        with os.fdopen(handle, "wb") as stream:
            pickle.dump(obj, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, file_path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


#: ``(module, name)`` pairs ``load_obj`` may reconstruct besides the builtin containers and numbers.
SAFE_PICKLE_GLOBALS = frozenset({
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("collections", "deque"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"),
    ("builtins", "range"), ("builtins", "bytearray"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in SAFE_PICKLE_GLOBALS or (module == "numpy" and name.endswith("DType")) or (
                module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise DataError(
            f"load_obj refuses to load {module}.{name}: unpickling arbitrary classes can run code from the file. "
            f"Only containers, numbers, strings and numpy arrays are loaded by default; pass trusted=True for a "
            f"file you created yourself."
        )


def load_obj(file_path, trusted=False):
    """Loads an object written by :func:`save_obj`.

    Unlike the original (a plain ``pickle.load``, which executes whatever the
    file tells it to), only builtin containers, numbers, strings,
    ``collections`` containers and numpy arrays/scalars are reconstructed by
    default, which covers the results dictionaries the scripts save.

    Args:
        file_path: the pickle file.
        trusted: True to unpickle anything (only for files you wrote yourself).

    Returns:
        The object.

    Raises:
        DataError: the file holds another kind of object and ``trusted`` is False.
    """
    with open(file_path, "rb") as stream:
        payload = stream.read()
    if trusted:
        return pickle.loads(payload)
    return _SafeUnpickler(io.BytesIO(payload)).load()


OrderedDict = collections.OrderedDict
