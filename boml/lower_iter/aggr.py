"""Bilevel Descent Aggregation (``inner_method="Aggr"``)."""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.lower_iter.inner_grad import BOMLInnerGradTrad, inner_gradient


@extension.register_lower_iter("Aggr")
class BOMLInnerGradAggr(BOMLInnerGradTrad):
    """BDA: the inner direction aggregates the lower and upper gradients.

    At step ``k = 1..T``::

        d_k = (1 - a_k) * t * grad_y f(x, y) + a_k * s * grad_y F(x, y)

    with ``a_k = alpha / k`` for a scalar ``alpha`` or ``a_k = |alpha[k-1]|`` for a
    per-step vector (``learn_alpha_itr``). ``alpha``, ``s`` and ``t`` may be
    meta-parameters. With ``alpha = 0`` the dynamics equal ``Trad``.

    Args (in ``config``):
        alpha: scalar or vector tensor of length T.
        s, t: scalar tensors weighting the upper and lower gradients.

    References:
        Liu et al., "A Generic First-Order Algorithmic Framework for Bi-Level
        Programming Beyond Lower-Level Singleton", ICML 2020.
    """

    needs_outer_objective = True

    def _coefficients(self, task, step):
        alpha = task.local(self.config["alpha"])
        s = task.local(self.config["s"])
        t = task.local(self.config["t"])
        dtype = self.var_list[0].dtype.base_dtype
        alpha, s, t = (tf.cast(v, dtype) for v in (alpha, s, t))
        step = tf.cast(step, tf.int32)
        if alpha.shape.ndims:
            a_k = tf.abs(tf.gather(tf.reshape(alpha, [-1]), step - 1))
        else:
            a_k = alpha / tf.cast(step, dtype)
        return a_k, s, t

    def direction(self, task, objectives, state, step):
        a_k, s, t = self._coefficients(task, step)
        lower, _ = inner_gradient(task, objectives["inner"], state)
        upper, _ = inner_gradient(task, objectives["outer"], state)
        return [(1.0 - a_k) * t * g_f + a_k * s * g_F for g_f, g_F in zip(lower, upper)]

    def potential(self, task, objectives, state, step):
        a_k, s, t = self._coefficients(task, step)
        return ((1.0 - a_k) * t * task.at_state(objectives["inner"], state)
                + a_k * s * task.at_state(objectives["outer"], state))
