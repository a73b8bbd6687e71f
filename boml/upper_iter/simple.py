"""The MAML-family meta-gradient (``outer_method="Simple"``)."""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.upper_iter.outer_grad import BOMLOuterGrad


@extension.register_upper_iter("Simple")
class BOMLOuterGradSimple(BOMLOuterGrad):
    """Gradient of the query loss after adaptation, through the unrolled inner loop.

    ``dF(theta_T(x))/dx``, second order unless ``first_order=True`` in
    ``ll_problem`` (FOMAML, where it reduces to ``grad F(theta_T)`` for the
    initialization and ``-sum_t g_t * grad F`` for a learned step size).

    With warp layers (``use_warp=True``) the meta-objective is the sum of the
    query losses along the whole trajectory, ``sum_{t=0..T} F(theta_t)``, and the
    hypergradient of the initialization is scaled by ``warp_lambda``.

    References:
        Finn et al., ICML 2017. Flennerhag et al., "Meta-Learning with Warped
        Gradient Descent", ICLR 2020.
    """

    def __init__(self, inner_method=None, truncate_iter=-1, use_warp=False, warp_lambda=1.0, **config):
        super().__init__(inner_method=inner_method, truncate_iter=truncate_iter, **config)
        self.use_warp = use_warp
        self.warp_lambda = warp_lambda

    def task_hypergradients(self, task, inner_grad, outer_objective):
        trajectory = inner_grad.unroll(task, differentiable=True)
        local_outer = task.local(outer_objective)
        outer = task.at_state(local_outer, trajectory.final)
        inner = task.at_state(task.local(inner_grad.inner_objective), trajectory.final)
        if not self.use_warp:
            return tf.gradients(outer, task.meta_locals), outer, inner
        states = trajectory.states or [trajectory.initial, trajectory.final]
        objective = tf.add_n([task.at_state(local_outer, s) for s in states[:-1]] + [outer])
        grads = tf.gradients(objective, task.meta_locals)
        init_sources = {extension.get_initial_state(v).ref() for v in inner_grad.var_list}
        grads = [g * self.warp_lambda if g is not None and p.ref() in init_sources else g
                 for g, p in zip(grads, task.meta_params)]
        return grads, outer, inner
