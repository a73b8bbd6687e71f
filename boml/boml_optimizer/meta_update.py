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
from boml.errors import DivergenceError, InnerDivergenceWarning, InvalidArgumentError, UnknownNameError
from boml.lower_iter.inner_grad import GRAPH_CHECK_MARKER

__all__ = ["OUTER_OPTIMIZERS", "MetaUpdate", "StepCounter", "outer_optimizer", "training_feed"]

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


def outer_optimizer(name, meta_learning_rate, mlr_decay, momentum, global_step, meta_param=None):
    """The outer optimizer on the schedule ``mlr0 / (1 + mlr_decay * k)`` at meta-iteration ``k``.

    Args:
        name: ``"Adam"``, ``"Momentum"`` or ``"SGD"``.
        meta_learning_rate: ``mlr0`` (positive number).
        mlr_decay: inverse-time decay rate.
        momentum: momentum of the ``Momentum`` optimizer.
        global_step: the meta-iteration counter.
        meta_param: the meta-parameters (default: the METAPARAMETERS collection); the
            schedule is float64 when one of them is, so float64 problems do not see a
            float32-rounded learning rate.

    Returns:
        ``(schedule tensor, tf.train optimizer)``.

    Raises:
        UnknownNameError: ``name`` is not an outer optimizer.
        InvalidArgumentError: ``meta_learning_rate`` is not a positive finite number.
    """
    if name not in OUTER_OPTIMIZERS:
        raise UnknownNameError(f"Unknown outer_objective_optimizer {name!r}; allowed: {sorted(OUTER_OPTIMIZERS)}.")
    params = tf.get_collection(extension.GraphKeys.METAPARAMETERS) if meta_param is None else meta_param
    dtype = tf.float64 if any(p.dtype.base_dtype == tf.float64 for p in params) else tf.float32
    schedule = tf.train.inverse_time_decay(tf.constant(_positive(meta_learning_rate), dtype), global_step,
                                           decay_steps=1, decay_rate=mlr_decay)
    return schedule, OUTER_OPTIMIZERS[name](schedule, momentum)


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
