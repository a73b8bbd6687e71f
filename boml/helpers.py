"""Small helpers shared by the whole package, each defined once with one contract (numpy only).

The original BOML had copies of these in ``boml.utils``, ``setup_model.network_utils`` and
``load_data.datasets.dl_utils``, with different contracts; those modules now import them from here,
so every original name still works from where the original had it:

* random states: :func:`get_rand_state`;
* lists and calls: :func:`as_list`, :func:`as_tuple_or_list`, :func:`flatten_list`, :func:`maybe_call`,
  :func:`maybe_get`, :func:`merge_dicts`, :func:`isinteger`, :func:`is_positive_int`;
* readable names: :func:`name_from_vars`, :func:`name_from_dict`;
* statistics: :func:`half_int` and :func:`mean_std_ci`, the one 95% confidence-interval formula of boml
  (also behind the workflow's evaluation reports);
* keyword spellings: :func:`deprecated_keyword`.

Nothing here imports TensorFlow.
"""
import functools
import numbers
import warnings

import numpy as np

from boml.errors import InvalidArgumentError

__all__ = ["Z_95", "get_rand_state", "as_list", "as_tuple_or_list", "flatten_list", "maybe_call", "maybe_get",
           "merge_dicts", "isinteger", "is_positive_int", "name_from_vars", "name_from_dict", "half_int",
           "mean_std_ci", "deprecated_keyword"]

#: Two-sided 95% quantile of the standard normal distribution, rounded as in the original BOML and the
#: few-shot literature (``scipy.stats.norm.ppf(0.975)`` = 1.95996...).
Z_95 = 1.96

_SEED_LIMIT = 2 ** 32  # numpy's RandomState takes seeds in [0, 2**32)


# ------------------------------------------------------------------------------------ random states
def get_rand_state(rand=None):
    """A ``numpy.random.RandomState`` made from ``rand``.

    Args:
        rand: None (a fresh, unseeded state), an integer seed in ``[0, 2**32)``, a non-empty sequence (list,
            tuple or array) of such integers, or a ``RandomState``, returned as is so that the caller's
            stream keeps advancing.

    Returns:
        The ``RandomState``.

    Raises:
        InvalidArgumentError: ``rand`` is none of these (booleans, negative or float seeds included).
    """
    if isinstance(rand, np.random.RandomState):
        return rand
    if rand is None:
        return np.random.RandomState()
    if isinstance(rand, numbers.Integral) and not isinstance(rand, (bool, np.bool_)):
        if 0 <= int(rand) < _SEED_LIMIT:
            return np.random.RandomState(int(rand))
    elif isinstance(rand, (list, tuple, np.ndarray)):
        seeds = np.asarray(rand)
        if (seeds.size and seeds.ndim == 1 and np.issubdtype(seeds.dtype, np.integer)
                and seeds.min() >= 0 and seeds.max() < _SEED_LIMIT):
            return np.random.RandomState(seeds)
    raise InvalidArgumentError(
        f"rand must be None, an integer seed in [0, 2**32), a non-empty sequence of such seeds or a "
        f"numpy.random.RandomState; received {rand!r} (type {type(rand).__name__}). Pass one of those."
    )


# ------------------------------------------------------------------------------------ lists and calls
def as_list(obj):
    """``obj`` as a new list.

    Args:
        obj: None (gives ``[]``), a list or tuple (copied into a list), or anything else (wrapped, so a
            string is one item).

    Returns:
        A list.
    """
    if obj is None:
        return []
    if isinstance(obj, (list, tuple)):
        return list(obj)
    return [obj]


def as_tuple_or_list(obj):
    """``obj`` if it is a tuple or a list, else the one-item list ``[obj]`` (the original's contract).

    Args:
        obj: any value.

    Returns:
        ``obj`` itself (a tuple or a list) or ``[obj]``.
    """
    return obj if isinstance(obj, (list, tuple)) else [obj]


def flatten_list(lst):
    """Concatenates the items of ``lst``, each taken through :func:`as_list`.

    Args:
        lst: a sequence of lists, tuples, single items or None (skipped).

    Returns:
        The flat list, e.g. ``[[1, 2], 3, (4,), None]`` gives ``[1, 2, 3, 4]``.
    """
    return [item for sub in lst for item in as_list(sub)]


def maybe_call(obj, *args, **kwargs):
    """``obj(*args, **kwargs)`` if ``obj`` is callable, else ``obj``.

    Args:
        obj: a callable or a value.
        *args: positional arguments of the call.
        **kwargs: keyword arguments of the call.

    Returns:
        The result of the call, or ``obj``.
    """
    return obj(*args, **kwargs) if callable(obj) else obj


def maybe_get(obj, i):
    """``obj[i]`` if ``obj`` supports indexing (a string does not count), else ``obj``.

    Args:
        obj: a sequence or a single value.
        i: the index.

    Returns:
        ``obj[i]`` or ``obj``.
    """
    return obj[i] if hasattr(obj, "__getitem__") and not isinstance(obj, str) else obj


def merge_dicts(*dicts):
    """A new dict with the items of ``dicts``, later ones winning.

    Args:
        *dicts: dictionaries; None or empty entries are skipped.

    Returns:
        The merged dict.
    """
    merged = {}
    for d in dicts:
        if d:
            merged.update(d)
    return merged


def isinteger(num):
    """True for Python and numpy integers, False for booleans and everything else."""
    return isinstance(num, (int, np.integer)) and not isinstance(num, (bool, np.bool_))


def is_positive_int(value):
    """True for integers > 0 (booleans excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value > 0


# ------------------------------------------------------------------------------------ readable names
def name_from_vars(var_dict, *vars_):
    """A readable name ``key1_value1_key2_value2`` from the listed keys of ``var_dict``.

    Args:
        var_dict: a dict of settings.
        *vars_: the keys to use, in order; keys absent from ``var_dict`` are skipped.

    Returns:
        The name.
    """
    return "_".join(f"{k}_{var_dict[k]}" for k in vars_ if k in var_dict)


def name_from_dict(dct, *exclude):
    """A readable name from every entry of ``dct`` but the ``exclude`` keys, sorted by key.

    Args:
        dct: a dict of settings.
        *exclude: keys to leave out.

    Returns:
        The name, e.g. ``{"b": 2, "a": 1}`` gives ``"a_1_b_2"``.
    """
    return "_".join(f"{k}_{v}" for k, v in sorted(dct.items()) if k not in exclude)


# ------------------------------------------------------------------------------------ statistics
def half_int(arr):
    """Half-width of the 95% confidence interval of the mean of ``arr``.

    The normal-approximation interval ``Z_95 * s / sqrt(n)`` with the sample standard deviation ``s``
    (``ddof=1``); this is the original's ``1.96 * std / sqrt(n - 1)`` with the population ``std``,
    written with the unbiased estimate. With the few hundred episodes of a few-shot evaluation it is
    within 0.2% of the Student-t interval (``t_{0.975, 599}`` = 1.9640); for a handful of measures it is
    narrower than the t interval.

    Args:
        arr: the measures (any shape; all entries count).

    Returns:
        The half-width, NaN for fewer than two measures (no interval from one measure).
    """
    arr = np.asarray(arr, dtype=np.float64).ravel()
    if arr.size < 2:
        return float("nan")
    return float(Z_95 * arr.std(ddof=1) / np.sqrt(arr.size))


def mean_std_ci(measures, mul=1.0, tex=False):
    """Mean, sample standard deviation and 95% confidence half-width of ``measures``.

    Args:
        measures: the measures (e.g. one accuracy per test episode).
        mul: factor applied first (100 for percentages).
        tex: True to return ``"$mean \\pm ci$"`` (two decimals) for LaTeX tables.

    Returns:
        ``(mean, std, ci)`` as floats, ``std`` with ``ddof=1`` and ``ci`` from :func:`half_int` (both NaN for
        a single measure); or the LaTeX string.

    Raises:
        InvalidArgumentError: ``measures`` is empty.
    """
    measures = np.asarray(measures, dtype=np.float64).ravel() * mul
    if measures.size == 0:
        raise InvalidArgumentError("mean_std_ci needs at least one measure; received none. Pass a non-empty list.")
    mean = float(measures.mean())
    std = float(measures.std(ddof=1)) if measures.size > 1 else float("nan")
    ci = half_int(measures)
    if tex:
        return f"${mean:.2f} \\pm {ci:.2f}$"
    return mean, std, ci


# ------------------------------------------------------------------------------------ keyword spellings
def deprecated_keyword(old, new):
    """Decorator: a function also accepts the keyword ``old`` as a deprecated spelling of ``new``.

    Passing ``old=value`` warns with a ``DeprecationWarning`` and calls the function with ``new=value``.

    Args:
        old: the deprecated keyword (e.g. ``"datatype"``).
        new: the keyword the function takes (e.g. ``"data_type"``).

    Returns:
        The decorator. The wrapped function raises ``InvalidArgumentError`` when both spellings are given.
    """
    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                if new in kwargs:
                    raise InvalidArgumentError(
                        f"{function.__qualname__} received both {new}={kwargs[new]!r} and the deprecated spelling "
                        f"{old}={kwargs[old]!r}; pass {new} only."
                    )
                warnings.warn(f"{function.__qualname__}: the keyword {old!r} is deprecated; use {new!r}.",
                              DeprecationWarning, stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate
