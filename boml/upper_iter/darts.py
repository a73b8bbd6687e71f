"""The DARTS finite-difference hypergradient."""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad, add_gradients


@extension.register_upper_iter("Darts")
class BOMLOuterGradDarts(BOMLOuterGrad):
    """One-step hypergradient with a finite-difference Hessian-vector product.

    With ``w = y_{T-1}``, the last step ``y_T = w - eta * grad_y psi(x, w)`` (``psi``
    the step potential: ``f`` for Trad, the BDA mixture for Aggr), ``v = grad_y F(y_T)``,
    ``u = eta * v`` and ``r = epsilon / ||u||``::

        dF/dx ~= grad_x F(y_T) - [grad_x psi(x, w + r u) - grad_x psi(x, w - r u)] / (2 r)
                 - grad_x <eta(x), grad_y psi(x, w) * v>

    (the last term only when the step size is learned). The same ``r`` scales the
    perturbation and the denominator (the original used two different scales).
    Up to O(r^2) this equals one-step Reverse (``truncate_iter=1``) for SGD
    dynamics; with Momentum or Adam it is the SGD approximation.

    Args:
        epsilon: finite-difference scale (default 0.01, as in the DARTS paper).

    References:
        Liu, Simonyan and Yang, "DARTS: Differentiable Architecture Search", ICLR 2019.
    """

    def __init__(self, inner_method=None, truncate_iter=-1, epsilon=0.01, **config):
        super().__init__(inner_method=inner_method, truncate_iter=truncate_iter, **config)
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise InvalidArgumentError(f"epsilon must be a positive number; received {epsilon!r}. Try 0.01.")
        self.epsilon = float(epsilon)

    @property
    def Epsilon(self):  # noqa: N802 - the original attribute name
        return self.epsilon

    def task_hypergradients(self, task, inner_grad, outer_objective):
        trajectory = inner_grad.unroll(task, differentiable=False, keep_previous=True)
        final = [tf.stop_gradient(y) for y in trajectory.final]
        previous = [tf.stop_gradient(y) for y in trajectory.previous]
        objectives = inner_grad.local_objectives(task)
        rates = inner_grad.local_learning_rates(task)
        local_outer = task.local(outer_objective)
        outer = task.at_state(local_outer, final)
        inner = task.at_state(objectives["inner"], final)
        v = tf.gradients(outer, final)
        v = [tf.zeros_like(y) if g is None else g for g, y in zip(v, final)]
        u = [tf.stop_gradient(rate * g) for rate, g in zip(rates, v)]
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(x)) for x in u]))
        dtype = norm.dtype
        r = tf.cast(self.epsilon, dtype) / tf.maximum(norm, tf.cast(1e-30, dtype))
        last = inner_grad.T
        plus = inner_grad.potential(task, objectives, [w + r * d for w, d in zip(previous, u)], last)
        minus = inner_grad.potential(task, objectives, [w - r * d for w, d in zip(previous, u)], last)
        g_plus = tf.gradients(plus, task.meta_locals)
        g_minus = tf.gradients(minus, task.meta_locals)
        fd = [None if a is None and b is None else
              -((0 if a is None else a) - (0 if b is None else b)) / (2.0 * r) for a, b in zip(g_plus, g_minus)]
        direct = tf.gradients(outer, task.meta_locals)
        at_previous = inner_grad.potential(task, objectives, previous, last)
        step_direction = tf.gradients(at_previous, previous)
        rate_term = -tf.add_n([tf.reduce_sum(rate * tf.stop_gradient(g * vi))
                               for rate, g, vi in zip(rates, step_direction, v) if g is not None])
        learned_rate = tf.gradients(rate_term, task.meta_locals)
        return add_gradients(add_gradients(direct, fd), learned_rate), outer, inner
