"""The meta-update of ``BOMLOptimizer``: outer optimizer, guarded apply, and one meta-iteration's run.

The update built by ``MetaUpdate`` is applied only when every loss and every
aggregated hypergradient of the iteration is finite; the check and the apply are
in the same graph (a ``tf.cond`` on an all-finite flag), so a meta-iteration is
still a single ``session.run``. When the flag is false nothing changes (meta-
parameters, outer optimizer slots, global step, task variables) and ``run``
raises ``DivergenceError`` naming what was not finite.
"""
import re
import warnings

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension, utils
from boml.helpers import is_positive_int
from boml.errors import DivergenceError, InnerDivergenceWarning, InvalidArgumentError, InvalidCombinationError, \
    UnknownNameError
from boml.lower_iter.inner_grad import GRAPH_CHECK_MARKER

__all__ = ["OUTER_OPTIMIZERS", "META_LR_SCHEDULES", "MetaUpdate", "StepCounter", "cosine_learning_rate",
           "outer_optimizer", "training_feed"]

#: The schedules of the meta learning rate (``ul_problem(meta_lr_schedule=...)``).
META_LR_SCHEDULES = ("inverse_time", "cosine")
#: ``ul_problem``'s default ``mlr_decay`` (the inverse-time schedule's rate).
DEFAULT_MLR_DECAY = 1e-5

#: An inner loop that ends above this multiple of its start value (task mean) is reported.
INNER_GROWTH_LIMIT = 10.0

OUTER_OPTIMIZERS = {
    # Adam's betas in the schedule's dtype: float64 meta-parameters get float64 bias corrections.
    "Adam": lambda lr, momentum: tf.train.AdamOptimizer(lr, tf.constant(0.9, lr.dtype), tf.constant(0.999, lr.dtype)),
    "Momentum": lambda lr, momentum: tf.train.MomentumOptimizer(lr, momentum),
    "SGD": lambda lr, momentum: tf.train.GradientDescentOptimizer(lr),
}


def _positive(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value) \
            or value <= 0:
        raise InvalidArgumentError(f"meta_learning_rate must be a positive finite number; received {value!r}.")
    return float(value)


def cosine_learning_rate(k, lr0, lr_min, period):
    """The cosine-annealed meta learning rate at meta-iteration ``k`` (numpy; the graph computes the same).

    ``lr_min + (lr0 - lr_min) * (1 + cos(pi * min(k, P) / P)) / 2``: ``lr0`` at ``k = 0``, ``lr_min`` from
    ``k = P`` on (one half-period, no restart), as MAML++ anneals its meta learning rate over training
    (Antoniou et al., "How to train your MAML", ICLR 2019, section 4; Loshchilov and Hutter, SGDR, ICLR 2017).
    """
    return lr_min + (lr0 - lr_min) * (1.0 + np.cos(np.pi * min(k, period) / period)) / 2.0


def _check_schedule(schedule, lr0, lr_min, period, mlr_decay):
    if schedule not in META_LR_SCHEDULES:
        raise UnknownNameError(f"Unknown meta_lr_schedule {schedule!r}; allowed: {list(META_LR_SCHEDULES)}.")
    if schedule == "inverse_time":
        if lr_min != 0.0 or period is not None:
            raise InvalidCombinationError(
                f"meta_lr_min and meta_lr_period are settings of meta_lr_schedule='cosine'; received meta_lr_min="
                f"{lr_min!r}, meta_lr_period={period!r} with meta_lr_schedule='inverse_time'. Pass "
                f"meta_lr_schedule='cosine', or leave them at 0.0 and None.")
        return
    if mlr_decay not in (0, DEFAULT_MLR_DECAY):
        raise InvalidCombinationError(
            f"mlr_decay is the rate of the inverse-time schedule; received mlr_decay={mlr_decay!r} with "
            f"meta_lr_schedule='cosine'. Leave mlr_decay at its default (or 0), or use "
            f"meta_lr_schedule='inverse_time'.")
    if not is_positive_int(period):
        raise InvalidArgumentError(
            f"meta_lr_schedule='cosine' needs meta_lr_period, the number of meta-iterations over which the meta "
            f"learning rate anneals (a positive integer, e.g. the meta-training iterations); received {period!r}.")
    if isinstance(lr_min, bool) or not isinstance(lr_min, (int, float, np.floating)) or not 0 <= lr_min <= lr0:
        raise InvalidArgumentError(
            f"meta_lr_min must be a number between 0 and meta_learning_rate={lr0!r}; received {lr_min!r}.")


def outer_optimizer(name, meta_learning_rate, mlr_decay, momentum, global_step, meta_param=None,
                    schedule="inverse_time", lr_min=0.0, period=None):
    """The outer optimizer on the meta learning rate's schedule.

    ``"inverse_time"``: ``mlr0 / (1 + mlr_decay * k)`` at meta-iteration ``k``; ``"cosine"``:
    ``lr_min + (mlr0 - lr_min) (1 + cos(pi min(k, P) / P)) / 2`` with ``P = period`` (see
    ``cosine_learning_rate``; ``mlr_decay`` is not used and must stay at its default or 0).

    Args:
        name: ``"Adam"``, ``"Momentum"`` or ``"SGD"``.
        meta_learning_rate: ``mlr0`` (positive number).
        mlr_decay: inverse-time decay rate.
        momentum: momentum of the ``Momentum`` optimizer.
        global_step: the meta-iteration counter.
        meta_param: the meta-parameters (default: the METAPARAMETERS collection); the
            schedule is float64 when one of them is, so float64 problems do not see a
            float32-rounded learning rate.
        schedule: ``"inverse_time"`` (default) or ``"cosine"``.
        lr_min: the cosine schedule's final learning rate (``0 <= lr_min <= mlr0``).
        period: the cosine schedule's ``P`` in meta-iterations (required with ``"cosine"``).

    Returns:
        ``(schedule tensor, tf.train optimizer)``.

    Raises:
        UnknownNameError: ``name`` is not an outer optimizer, or ``schedule`` is not a schedule.
        InvalidArgumentError: ``meta_learning_rate`` is not a positive finite number, or a bad cosine setting.
        InvalidCombinationError: a setting of the other schedule was given.
    """
    if name not in OUTER_OPTIMIZERS:
        raise UnknownNameError(f"Unknown outer_objective_optimizer {name!r}; allowed: {sorted(OUTER_OPTIMIZERS)}.")
    lr0 = _positive(meta_learning_rate)
    _check_schedule(schedule, lr0, lr_min, period, mlr_decay)
    params = tf.get_collection(extension.GraphKeys.METAPARAMETERS) if meta_param is None else meta_param
    dtype = tf.float64 if any(p.dtype.base_dtype == tf.float64 for p in params) else tf.float32
    if schedule == "cosine":
        with tf.name_scope("cosine_meta_lr"):
            progress = tf.cast(tf.minimum(global_step, period), dtype) / float(period)
            rate = lr_min + (lr0 - lr_min) * (1.0 + tf.cos(np.pi * progress)) / 2.0
    else:
        rate = tf.train.inverse_time_decay(tf.constant(lr0, dtype), global_step, decay_steps=1, decay_rate=mlr_decay)
    return rate, OUTER_OPTIMIZERS[name](rate, momentum)


def training_feed(step, inner, outer, initializer, outergradient, inner_grads):
    """The feed dict of meta-iteration ``step`` (each part may be a callable of the step).

    Raises:
        ShapeError: an experiment is fed episodes of other sizes than it trains on.
    """
    feed = utils.merge_dicts(utils.maybe_call(inner, step), utils.maybe_call(outer, step),
                             utils.maybe_call(initializer, step))
    if hasattr(outergradient, "feed_dict"):
        feed.update(outergradient.feed_dict(step))
    for inner_grad in inner_grads:
        if inner_grad.experiment is not None:
            inner_grad.experiment.check_training_feed(feed)
    return feed


class StepCounter:
    """The meta-iteration index of each session, read from the global step once and then counted in Python."""

    def __init__(self, global_step):
        self._global_step = global_step
        self._steps = {}

    def get(self, session):
        """The index of the next meta-iteration run in ``session``."""
        if id(session) not in self._steps:
            self.sync(session)
        return self._steps[id(session)]

    def sync(self, session):
        """Re-reads the global step (after restoring a checkpoint)."""
        self._steps[id(session)] = int(session.run(self._global_step))

    def advance(self, session):
        """Counts one applied meta-iteration."""
        self._steps[id(session)] += 1


def _all_finite(tensor):
    return tf.reduce_all(tf.is_finite(tensor))


class MetaUpdate:
    """Aggregated hypergradients, the guarded meta-update op and the fetches of one meta-iteration.

    Args:
        outergradient: the upper strategy (after every ``ul_problem``).
        optimizer: the outer ``tf.train.Optimizer``.
        global_step: the meta-iteration counter (incremented by an applied update only).
        aggregation_fn, gradient_clip: see ``BOMLOptimizer.aggregate_all``.
        settings: ``{name: tensor}`` of the settings a diverged run reports
            (meta learning rate, inner learning rate).
    """

    def __init__(self, outergradient, optimizer, global_step, aggregation_fn, gradient_clip, settings):
        self._outergradient = outergradient
        self.pairs = outergradient.outer_grads_and_vars(aggregation_fn=aggregation_fn, gradient_clip=gradient_clip)
        self._names = [var.op.name for _, var in self.pairs]
        with tf.name_scope("meta_update"):
            outer_loss = tf.reduce_mean(outergradient.outer_losses)
            inner_loss = tf.reduce_mean(outergradient.inner_losses)
            start_inner_loss = tf.reduce_mean(outergradient.start_inner_losses)
            loss_flags = [_all_finite(outer_loss), _all_finite(inner_loss)]
            grad_flags = [_all_finite(grad) for grad, _ in self.pairs]
            finite = tf.reduce_all(tf.stack(loss_flags + grad_flags), name="all_finite")

            def apply():
                applied = optimizer.apply_gradients(self.pairs)
                with tf.control_dependencies([applied]):
                    adapted = outergradient.adapted_state_assignment()
                with tf.control_dependencies([applied, adapted]):
                    return tf.assign_add(global_step, 1)

            self.op = tf.cond(finite, apply, lambda: tf.identity(global_step), name="guarded_update")
        self._growths = 0
        self._fetches = {"update": self.op, "outer_loss": outer_loss, "inner_loss": inner_loss,
                         "start_inner_loss": start_inner_loss,
                         "finite": tf.stack(loss_flags + grad_flags), "settings": dict(settings)}

    def run(self, session, feeds, inner_grads, steps):
        """Runs one meta-iteration (one ``session.run``).

        Args:
            session: the session, or None for the default one.
            feeds: ``(inner, outer, initializer)`` feed dicts (or callables of the step).
            inner_grads: the lower strategies (their experiments check the feed).
            steps: the ``StepCounter``.

        Returns:
            ``{"outer_loss", "inner_loss"}`` (floats).

        Raises:
            DivergenceError: a loss or hypergradient was not finite (the update was not applied).
            InvalidArgumentError: no session, a boml in-graph check failed, or a placeholder the graph
                needs was not fed.
        """
        session = session or tf.get_default_session()
        if session is None:
            raise InvalidArgumentError("run() needs a session: pass session=sess or call it inside 'with sess:'.")
        step = steps.get(session)
        feed = training_feed(step, *feeds, self._outergradient, inner_grads)
        try:
            values = session.run(self._fetches, feed_dict=feed)
        except tf.errors.InvalidArgumentError as error:
            translated = translate(error)
            if translated is error:
                raise
            raise translated from error
        if hasattr(self._outergradient, "after_run"):  # e.g. Implicit reports its unsolved linear systems
            self._outergradient.after_run(step)
        losses = {"outer_loss": float(values["outer_loss"]), "inner_loss": float(values["inner_loss"])}
        flags = [bool(f) for f in values["finite"]]
        if not all(flags):
            bad = [name for name, ok in zip(["outer_loss", "inner_loss"] + [f"hypergradient of {n}" for n in
                                                                          self._names], flags) if not ok]
            settings = _describe_settings(values["settings"])
            raise DivergenceError(
                f"The meta-iteration {step} produced non-finite values in: {', '.join(bad)} (losses {losses}). "
                f"The update was NOT applied: the meta-parameters, the outer optimizer and the global step are "
                f"unchanged. Settings to look at: {settings}; lower the inner learning_rate or the "
                f"meta_learning_rate, or clip the hypergradients with aggregate_all(gradient_clip=...)."
            )
        self._check_inner_growth(step, float(values["start_inner_loss"]), losses["inner_loss"], values["settings"])
        steps.advance(session)
        return losses

    def _check_inner_growth(self, step, start, end, settings):
        """Warns (at the 1st, 2nd, 4th, ... such meta-iteration) when the inner loop raised its objective."""
        if not end > INNER_GROWTH_LIMIT * max(abs(start), 1e-12):
            return
        self._growths += 1
        if self._growths & (self._growths - 1):
            return
        rates = _describe_settings(settings)
        warnings.warn(
            f"At meta-iteration {step} the inner loop raised the inner objective from {start:.6g} (episode start) "
            f"to {end:.6g} after its steps (task means; more than {INNER_GROWTH_LIMIT:g}x): the inner loop "
            f"diverges. Settings to look at: {rates}; lower the inner learning_rate of ll_problem. "
            f"({self._growths} such meta-iteration(s) so far; the next warning at {2 * self._growths}.)",
            InnerDivergenceWarning, stacklevel=4)


def _describe_settings(settings):
    """``"name=value, ..."`` of the run-time settings a diverged run reports (tensor settings as their mean)."""
    return ", ".join(f"{k}={float(np.mean(v)):.6g}" for k, v in settings.items())


def translate(error):
    """boml's ``InvalidArgumentError`` for TensorFlow's, when it is a boml check or a missing feed."""
    message = error.message or ""
    if GRAPH_CHECK_MARKER in message:
        detail = message.split(GRAPH_CHECK_MARKER, 1)[1].split("\n")[0].strip()
        return InvalidArgumentError(detail)
    match = re.search(r"You must feed a value for placeholder tensor '([^']+)'", message)
    if match:
        return InvalidArgumentError(
            f"The graph needs the placeholder {match.group(1)!r}, which the feed dicts given to run() do not "
            f"contain. Feed it in inner_objective_feed_dicts / outer_objective_feed_dicts (e.g. with "
            f"ex.feed_dicts(episodes)) or initializer_feed_dict."
        )
    return error
