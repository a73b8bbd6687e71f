"""The MAML-family meta-gradient (``outer_method="Simple"``), with the WarpGrad objectives."""
import dataclasses

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad, RecomputeOptions

WARP_OBJECTIVES = ("trajectory", "unrolled")


@dataclasses.dataclass(frozen=True)
class SimpleOptions(RecomputeOptions):
    """Options of ``Simple`` (those of ``RecomputeOptions`` and the following).

    Attributes:
        use_warp: the network has WarpGrad warp layers (set by ``meta_learner(use_warp=True)``).
        warp_lambda: weight of the initialization's hypergradient under WarpGrad.
        warp_objective: ``"trajectory"`` (published) or ``"unrolled"`` (the original BOML's).
    """

    use_warp: bool = False
    warp_lambda: float = 1.0
    warp_objective: str = "trajectory"

    def validate(self, owner):
        super().validate(owner)
        if self.warp_objective not in WARP_OBJECTIVES:
            raise InvalidArgumentError(
                f"{owner}: warp_objective must be one of {WARP_OBJECTIVES}; received {self.warp_objective!r}."
            )
        if self.use_warp and self.recompute_every is not None:
            raise InvalidArgumentError(
                f"{owner}: recompute_every={self.recompute_every!r} cannot be combined with warp layers: WarpGrad's "
                f"meta-objectives read every state of the trajectory. Leave recompute_every=None with use_warp=True.")


@extension.register_upper_iter("Simple")
class BOMLOuterGradSimple(BOMLOuterGrad):
    """Gradient of the query loss after adaptation, through the unrolled inner loop.

    ``dF(theta_T(x))/dx`` with ``theta_t = Phi_t(theta_{t-1})`` the real inner step
    (any optimizer, learned step sizes, mask), second order unless
    ``first_order=True`` in ``ll_problem`` (FOMAML, where it reduces to
    ``grad F(theta_T)`` for the initialization and ``-sum_t g_t * grad F`` for a
    learned SGD step size).

    With warp layers (``use_warp=True``, WarpGrad) two meta-objectives are offered:

    * ``warp_objective="trajectory"`` (default, as published): the adaptation
      trajectory ``(theta_k, s_k)``, k = 0..T-1, is treated as fixed, and the warp
      parameters ``omega`` minimize the query loss one real inner step further from
      every point of it, ``sum_k F(Phi_{k+1}(theta_k, s_k; omega); omega)``. The
      initialization receives ``warp_lambda * grad F(theta_T)`` (first order).
    * ``warp_objective="unrolled"`` (the original BOML's variant, with the final
      query loss included): ``sum_{t=0..T} F(theta_t)`` back-propagated through the
      trajectory, the initialization's hypergradient scaled by ``warp_lambda``.

    References:
        Finn et al., ICML 2017. Flennerhag et al., "Meta-Learning with Warped
        Gradient Descent", ICLR 2020.
    """

    Options = SimpleOptions
    inner_methods = ("Simple",)

    @property
    def use_warp(self):
        return self.config.use_warp

    @property
    def warp_lambda(self):
        return self.config.warp_lambda

    @property
    def warp_objective(self):
        return self.config.warp_objective

    def task_hypergradients(self, dynamics):
        if self.use_warp and self.warp_objective == "trajectory":
            return self._trajectory_hypergradients(dynamics)
        if not self.use_warp:
            return dynamics.reverse_hypergradients(recompute_every=self.config.recompute_every)
        trajectory = dynamics.unroll(keep_states=True)
        outer = dynamics.outer_value(trajectory.final)
        objective = tf.add_n([dynamics.outer_value(s) for s in trajectory.states[:-1]] + [outer])
        grads = tf.gradients(objective, dynamics.meta_locals)
        return self._scale_initialization(grads, dynamics), trajectory.final

    def _scale_initialization(self, grads, dynamics):
        return [g * self.warp_lambda if g is not None and dynamics.initializing_index(p) is not None else g
                for g, p in zip(grads, dynamics.meta_params)]

    def _trajectory_hypergradients(self, dynamics):
        trajectory = dynamics.unroll(differentiable=False, keep_states=True)
        final = trajectory.final
        lookahead = []
        for step, (state, slots) in enumerate(zip(trajectory.states[:-1], trajectory.slot_states[:-1]), start=1):
            point = [tf.stop_gradient(y) for y in state]
            point_slots = [tf.stop_gradient(s) for s in slots]
            direction = dynamics.direction(step, point)
            ahead, _ = dynamics.apply_direction(step, point, point_slots, direction, stop_direction=False)
            lookahead.append(dynamics.at_state(dynamics.outer_objective, ahead))
        warp_grads = tf.gradients(tf.add_n(lookahead), dynamics.meta_locals)
        final_grads = tf.gradients(dynamics.outer_value(final), final)
        grads = []
        for param, warp in zip(dynamics.meta_params, warp_grads):
            index = dynamics.initializing_index(param)
            if index is None:
                grads.append(warp)
            else:
                init = final_grads[index]
                grads.append(None if init is None else self.warp_lambda * init)
        return grads, final
