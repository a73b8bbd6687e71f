"""Bilevel Descent Aggregation (``inner_method="Aggr"``)."""
import dataclasses

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.lower_iter.inner_grad import BOMLInnerGradTrad, LowerOptions, inner_gradient


@dataclasses.dataclass(frozen=True)
class AggrOptions(LowerOptions):
    """``LowerOptions`` plus BDA's aggregation weights.

    Attributes:
        alpha_init: initial aggregation weight ``alpha``, in ``[0, 1]`` (``a_k`` is a
            convex weight between the lower and the upper gradient).
        s, t: weights of the upper and lower gradients (positive numbers).
        learn_alpha: learn the scalar ``alpha``.
        learn_alpha_itr: learn one ``alpha`` per step (a vector of length T).
        learn_st: learn ``s`` and ``t``.
    """

    alpha_init: float = 0.0
    s: float = 1.0
    t: float = 1.0
    learn_alpha: bool = False
    learn_alpha_itr: bool = False
    learn_st: bool = False

    def validate(self, owner):
        super().validate(owner)
        alpha = self.alpha_init
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 <= alpha <= 1.0:
            raise InvalidArgumentError(
                f"{owner}: alpha_init must be a number in [0, 1] (BDA's aggregation weight); received {alpha!r}. "
                f"Pass for example alpha_init=0.5.")
        for name in ("s", "t"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value) \
                    or value <= 0:
                raise InvalidArgumentError(
                    f"{owner}: {name} must be a positive finite number (BDA's gradient weight); received {value!r}. "
                    f"Pass for example {name}=1.0.")


@extension.register_lower_iter("Aggr")
class BOMLInnerGradAggr(BOMLInnerGradTrad):
    """BDA: the inner direction aggregates the lower and upper gradients.

    At step ``k = 1..T``::

        d_k = (1 - a_k) * t * grad_y f(x, y) + a_k * s * grad_y F(x, y)

    with ``a_k = alpha / k`` for a scalar ``alpha`` or ``a_k = |alpha[k-1]|`` for a
    per-step vector (``learn_alpha_itr``). ``alpha``, ``s`` and ``t`` are created by
    this strategy, as meta-parameters when learned. With ``alpha = 0`` the
    dynamics equal ``Trad``.

    References:
        Liu et al., "A Generic First-Order Algorithmic Framework for Bi-Level
        Programming Beyond Lower-Level Singleton", ICML 2020.
    """

    Options = AggrOptions
    needs_outer_objective = True

    def create_variables(self, learning_rate):
        learned = super().create_variables(learning_rate)
        config = self.config
        dtype = self.var_list[0].dtype.base_dtype.as_numpy_dtype
        if config.learn_alpha_itr:
            alpha = extension.get_outerparameter("alpha", np.full([self.T], config.alpha_init, dtype))
        elif config.learn_alpha:
            alpha = extension.get_outerparameter("alpha", np.asarray(config.alpha_init, dtype))
        else:
            alpha = tf.constant(config.alpha_init, dtype, name="alpha")
        if config.learn_st:
            s = extension.get_outerparameter("s", np.asarray(config.s, dtype))
            t = extension.get_outerparameter("t", np.asarray(config.t, dtype))
        else:
            s, t = tf.constant(config.s, dtype, name="s"), tf.constant(config.t, dtype, name="t")
        learned.update(alpha=alpha, s=s, t=t)
        return learned

    def shared_settings(self):
        return dict(super().shared_settings(), **{key: self.learned[key] for key in ("alpha", "s", "t")})

    def coefficients(self, task):
        dtype = self.var_list[0].dtype.base_dtype
        return {key: tf.cast(task.local(self.learned[key]), dtype) for key in ("alpha", "s", "t")}

    @staticmethod
    def _weights(hyperparameters, step, dtype):
        c = hyperparameters.coefficients
        step = tf.cast(step, tf.int32)
        if c["alpha"].shape.ndims:
            a_k = tf.abs(tf.gather(tf.reshape(c["alpha"], [-1]), step - 1))
        else:
            a_k = c["alpha"] / tf.cast(step, dtype)
        return a_k, c["s"], c["t"]

    def direction(self, dynamics, step, state, hyperparameters):
        a_k, s, t = self._weights(hyperparameters, step, state[0].dtype.base_dtype)
        lower, _ = inner_gradient(dynamics, dynamics.inner_objective, state)
        upper, _ = inner_gradient(dynamics, dynamics.lower_outer_objective, state)
        return [(1.0 - a_k) * t * g_f + a_k * s * g_F for g_f, g_F in zip(lower, upper)]

    def potential(self, dynamics, step, state, hyperparameters):
        a_k, s, t = self._weights(hyperparameters, step, state[0].dtype.base_dtype)
        return ((1.0 - a_k) * t * dynamics.at_state(dynamics.inner_objective, state)
                + a_k * s * dynamics.at_state(dynamics.lower_outer_objective, state))
