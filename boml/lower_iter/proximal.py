"""The iMAML inner problem (``inner_method="Proximal"``): the task loss plus a proximal term to the initialization."""
import dataclasses

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.lower_iter.inner_grad import LowerOptions
from boml.lower_iter.simple import BOMLInnerGradSimple

__all__ = ["BOMLInnerGradProximal", "ProximalOptions"]


@dataclasses.dataclass(frozen=True)
class ProximalOptions(LowerOptions):
    """Options of ``Proximal``.

    Attributes:
        proximal_lambda: ``lambda > 0``, the weight of ``lambda/2 ||theta - x||^2`` (default 1.0). A larger
            value keeps the adapted weights nearer the initialization and makes the meta-gradient's
            linear system ``(I + H / lambda)`` better conditioned.
    """

    proximal_lambda: float = 1.0

    def validate(self, owner):
        super().validate(owner)
        value = self.proximal_lambda
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value) \
                or value <= 0:
            raise InvalidArgumentError(
                f"{owner}: proximal_lambda must be a positive finite number; received {value!r}. Try 1.0 or 2.0.")


@extension.register_lower_iter("Proximal")
class BOMLInnerGradProximal(BOMLInnerGradSimple):
    """iMAML's inner problem: ``min_theta f(theta) + lambda/2 ||theta - x||^2`` from ``theta_0 = x``.

    The proximal term is added to the inner objective (so to every step's direction, to
    the optimality condition ``dynamics.residual`` and to the reported inner loss), with
    ``x`` the episode start of each task variable (the meta-initialization). With
    ``outer_method="Implicit"`` the meta-gradient is the implicit one at ``theta* ~ theta_T``::

        d F(theta*(x)) / dx = (I + H / lambda)^{-1} grad F(theta*),    H = grad^2 f(theta*),

    (``Implicit``'s ``lambda q`` with ``(H + lambda I) q = grad F``), solved by conjugate
    gradient with Hessian-vector products (or Implicit's other solvers). The inner loop
    runs in one ``tf.while_loop`` that is not differentiated: the graph and the memory do
    not grow with T. Cost: ``T`` gradient steps plus ``n_CG`` Hessian-vector products per task.

    References:
        Rajeswaran, Finn, Kakade and Levine, "Meta-Learning with Implicit Gradients", NeurIPS 2019.
    """

    Options = ProximalOptions
    outer_methods = ("Implicit",)
    unroll_in_python = False

    @property
    def proximal_lambda(self):
        return float(self.config.proximal_lambda)

    def _regularized(self, objective):
        objective = super()._regularized(objective)
        distances = [tf.reduce_sum(tf.square(var - tf.cast(start, var.dtype.base_dtype)))
                     for var, start in zip(self.var_list, self.initial_state)]
        dtype = self.var_list[0].dtype.base_dtype
        return objective + tf.constant(0.5 * self.proximal_lambda, dtype) * tf.add_n(distances)
