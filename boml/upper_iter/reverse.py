"""Reverse-mode hypergradient through the lower-level dynamics (RHG, TRHG)."""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.upper_iter.outer_grad import BOMLOuterGrad


@extension.register_upper_iter("Reverse")
class BOMLOuterGradReverse(BOMLOuterGrad):
    """RHG: the exact gradient of ``F(x, y_T(x))`` through the T-step dynamics.

    With Lagrange multipliers ``a_T = dF/dy_T`` and ``a_t = a_{t+1} dPhi_t/dy_t``::

        dF/dx = dF/dx|_direct + sum_t a_{t+1} dPhi_t/dx

    TensorFlow's reverse pass over the ``tf.while_loop`` of the dynamics computes
    exactly this sum (the states are kept on the forward pass). With
    ``truncate_iter=K`` only the last K transitions are back-propagated (TRHG);
    ``K >= T`` is the full RHG, ``K = 0`` keeps only the direct term.

    References:
        Franceschi et al., ICML 2017. Shaban et al., "Truncated Back-propagation
        for Bilevel Optimization", AISTATS 2019.
    """

    supports_truncation = True

    def task_hypergradients(self, task, inner_grad, outer_objective):
        trajectory = inner_grad.unroll(task, differentiable=True, truncate_iter=self.truncate_iter)
        outer = task.at_state(task.local(outer_objective), trajectory.final)
        inner = task.at_state(task.local(inner_grad.inner_objective), trajectory.final)
        grads = tf.gradients(outer, task.meta_locals)
        return grads, outer, inner
