"""Reptile (``outer_method="Reptile"``): a first-order meta-initialization method."""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.upper_iter.outer_grad import BOMLOuterGrad


@extension.register_upper_iter("Reptile")
class BOMLOuterGradReptile(BOMLOuterGrad):
    """Moves the initialization towards the adapted weights.

    For every meta-parameter that is the episode start of a task variable, the
    "hypergradient" handed to the outer optimizer is ``x - theta_T`` (no second
    derivatives), so plain SGD with step ``epsilon`` gives Reptile's update
    ``x <- x + epsilon * (theta_T - x)``. Meta-parameters that are not adapted
    (batch-norm offsets and scales, T-layers) receive the first-order gradient
    of the query loss at ``theta_T``. Any inner optimizer; a learned step size or
    an MT-net mask would get no update, so they are refused.

    References:
        Nichol, Achiam and Schulman, "On First-Order Meta-Learning Algorithms",
        arXiv:1803.02999, 2018.
    """

    inner_methods = ("Simple",)
    supports_learned_lr = False
    supports_mask = False

    def task_hypergradients(self, dynamics):
        final = dynamics.unroll(differentiable=False).final
        first_order = tf.gradients(dynamics.outer_value(final), dynamics.meta_locals)
        grads = []
        for param, local, grad in zip(dynamics.meta_params, dynamics.meta_locals, first_order):
            index = dynamics.initializing_index(param)
            grads.append(grad if index is None else local - final[index])
        return grads, final
