"""The MAML-family meta-gradient (``outer_method="Simple"``), with the WarpGrad objectives."""
import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.upper_iter.outer_grad import BOMLOuterGrad

WARP_OBJECTIVES = ("trajectory", "unrolled")


@extension.register_upper_iter("Simple")
class BOMLOuterGradSimple(BOMLOuterGrad):
    """Gradient of the query loss after adaptation, through the unrolled inner loop.

    ``dF(theta_T(x))/dx``, second order unless ``first_order=True`` in
    ``ll_problem`` (FOMAML, where it reduces to ``grad F(theta_T)`` for the
    initialization and ``-sum_t g_t * grad F`` for a learned step size).

    With warp layers (``use_warp=True``, WarpGrad) two meta-objectives are offered:

    * ``warp_objective="trajectory"`` (default, as published): the adaptation
      trajectory ``theta_0..theta_{T-1}`` is treated as fixed, and the warp
      parameters ``omega`` minimize the query loss one warped step further from
      every point of it, ``sum_k F(theta_k - eta * grad f(theta_k; omega); omega)``.
      The initialization receives ``warp_lambda * grad F(theta_T)`` (first order).
    * ``warp_objective="unrolled"`` (the original BOML's simplified variant, with
      the final query loss included): ``sum_{t=0..T} F(theta_t)`` back-propagated
      through the trajectory, the initialization's hypergradient scaled by
      ``warp_lambda``.

    References:
        Finn et al., ICML 2017. Flennerhag et al., "Meta-Learning with Warped
        Gradient Descent", ICLR 2020.
    """

    def __init__(self, inner_method=None, truncate_iter=-1, use_warp=False, warp_lambda=1.0,
                 warp_objective="trajectory", **config):
        super().__init__(inner_method=inner_method, truncate_iter=truncate_iter, **config)
        if warp_objective not in WARP_OBJECTIVES:
            raise InvalidArgumentError(
                f"warp_objective must be one of {WARP_OBJECTIVES}; received {warp_objective!r}."
            )
        self.use_warp = use_warp
        self.warp_lambda = warp_lambda
        self.warp_objective = warp_objective

    def task_hypergradients(self, task, inner_grad, outer_objective):
        if self.use_warp and self.warp_objective == "trajectory":
            return self._trajectory_hypergradients(task, inner_grad, outer_objective)
        trajectory = inner_grad.unroll(task, differentiable=True)
        local_outer = task.local(outer_objective)
        outer = task.at_state(local_outer, trajectory.final)
        inner = task.at_state(task.local(inner_grad.inner_objective), trajectory.final)
        if not self.use_warp:
            return tf.gradients(outer, task.meta_locals), outer, inner
        states = trajectory.states or [trajectory.initial, trajectory.final]
        objective = tf.add_n([task.at_state(local_outer, s) for s in states[:-1]] + [outer])
        grads = tf.gradients(objective, task.meta_locals)
        return self._scale_initialization(grads, task, inner_grad), outer, inner

    def _scale_initialization(self, grads, task, inner_grad):
        sources = {extension.get_initial_state(v).ref() for v in inner_grad.var_list}
        return [g * self.warp_lambda if g is not None and p.ref() in sources else g
                for g, p in zip(grads, task.meta_params)]

    def _trajectory_hypergradients(self, task, inner_grad, outer_objective):
        trajectory = inner_grad.unroll(task, differentiable=False)
        states = trajectory.states or [trajectory.initial, trajectory.final]
        objectives = inner_grad.local_objectives(task)
        rates = inner_grad.local_learning_rates(task)
        local_outer = task.local(outer_objective)
        final = [tf.stop_gradient(y) for y in states[-1]]
        outer = task.at_state(local_outer, final)
        inner = task.at_state(objectives["inner"], final)
        lookahead = []
        for step, state in enumerate(states[:-1], start=1):
            point = [tf.stop_gradient(y) for y in state]
            direction = inner_grad.direction(task, objectives, point, step)
            lookahead.append(task.at_state(local_outer, [y - r * d for y, r, d in zip(point, rates, direction)]))
        warp_grads = tf.gradients(tf.add_n(lookahead), task.meta_locals)
        final_grads = tf.gradients(outer, final)
        sources = {extension.get_initial_state(v).ref(): g for v, g in zip(inner_grad.var_list, final_grads)}
        grads = []
        for param, warp in zip(task.meta_params, warp_grads):
            if param.ref() in sources:
                init = sources[param.ref()]
                grads.append(None if init is None else self.warp_lambda * init)
            else:
                grads.append(warp)
        return grads, outer, inner
