"""Reptile (``outer_method="Reptile"``): a first-order meta-initialization method."""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.upper_iter.outer_grad import BOMLOuterGrad


@extension.register_upper_iter("Reptile")
class BOMLOuterGradReptile(BOMLOuterGrad):
    """Moves the initialization towards the adapted weights.

    For every meta-parameter that initializes a task variable, the "hypergradient"
    handed to the outer optimizer is ``x - theta_T`` (no second derivatives), so
    plain SGD with step ``epsilon`` gives Reptile's update
    ``x <- x + epsilon * (theta_T - x)``. Meta-parameters that are not adapted
    (batch-norm offsets and scales, T-layers) receive the first-order gradient
    of the query loss at ``theta_T``.

    References:
        Nichol, Achiam and Schulman, "On First-Order Meta-Learning Algorithms",
        arXiv:1803.02999, 2018.
    """

    def task_hypergradients(self, task, inner_grad, outer_objective):
        trajectory = inner_grad.unroll(task, differentiable=False)
        final = [tf.stop_gradient(y) for y in trajectory.final]
        outer = task.at_state(task.local(outer_objective), final)
        inner = task.at_state(task.local(inner_grad.inner_objective), final)
        first_order = tf.gradients(outer, task.meta_locals)
        sources = {}
        for var, theta_T in zip(inner_grad.var_list, final):
            sources[extension.get_initial_state(var).ref()] = theta_T
        grads = []
        for param, local, grad in zip(task.meta_params, task.meta_locals, first_order):
            theta_T = sources.get(param.ref())
            grads.append(local - theta_T if theta_T is not None else grad)
        return grads, outer, inner
