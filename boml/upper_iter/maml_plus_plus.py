"""MAML++'s multi-step loss, derivative-order annealing, LSLR and per-step batch norm (``outer_method="MAML++"``)."""
import dataclasses
import re

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension
from boml.helpers import isinteger
from boml.errors import InvalidArgumentError, InvalidCombinationError
from boml.lower_iter.dynamics import RunningStatistics, StepPlan
from boml.setup_model.network_utils import batch_norm_layers
from boml.upper_iter.outer_grad import BOMLOuterGrad, UpperOptions

__all__ = ["BOMLOuterGradMAMLPlusPlus", "MAMLPlusPlusOptions", "multi_step_loss_weights", "batch_norm_parameters"]

#: The batch-norm meta-parameters of boml's networks: ``bn{i}_offset`` and ``bn{i}_scale``.
BATCH_NORM_PARAMETER = re.compile(r"(?:^|/)bn\d+_(?:offset|scale)$")


def batch_norm_parameters(meta_param):
    """The batch-norm offsets and scales among ``meta_param`` (variables named ``bn{i}_offset``/``bn{i}_scale``)."""
    return [p for p in meta_param if hasattr(p, "initial_value") and BATCH_NORM_PARAMETER.search(p.op.name)]


def multi_step_loss_weights(k, T, anneal_iterations, final_only=False):
    """The per-step weights ``w_1..w_T`` of the multi-step loss at meta-iteration ``k``.

    The non-final weights start at ``1/T`` and fall linearly by ``1 / (T N)`` per
    meta-iteration (``N = anneal_iterations``) to ``0.03 / T``; the final weight is
    ``1 - sum`` of the others, so the weights always sum to 1 and end at the final loss
    (Antoniou et al.'s schedule, counted in meta-iterations instead of epochs).

    Args:
        k: meta-iteration (>= 0).
        T: number of inner steps.
        anneal_iterations: ``N``.
        final_only: return ``[0, ..., 0, 1]`` (the plain MAML objective).

    Returns:
        A float64 array of length T.
    """
    weights = np.zeros(T)
    if final_only or T == 1:
        weights[-1] = 1.0
        return weights
    weights[:-1] = np.maximum(1.0 / T - k / (T * anneal_iterations), 0.03 / T)
    weights[-1] = 1.0 - weights[:-1].sum()
    return weights


@dataclasses.dataclass(frozen=True)
class MAMLPlusPlusOptions(UpperOptions):
    """Options of ``MAML++``.

    Attributes:
        multi_step_loss: optimize ``sum_t w_t(k) F(theta_t)`` over the inner steps instead of
            ``F(theta_T)`` (default False: every switch is off, which is MAML); see ``multi_step_loss_weights``.
        msl_anneal_iterations: ``N``, the meta-iterations over which the non-final weights decay
            (default 1000).
        first_order_iterations: derivative-order annealing: the meta-gradient is first order
            (inner gradients treated as constants) for the first ``n`` meta-iterations, then
            second order (default 0: always second order).
        learn_step_sizes: LSLR: one learned inner step size per task variable (layer) and per
            step, the meta-parameter ``lslr`` of shape ``[T, len(var_list)]`` initialized to the
            inner learning rate (default False). Not with ``ll_problem(learn_lr=True)``. They are used at
            evaluation too (``BOMLOptimizer.adapted``): step ``t`` uses row ``min(t, T) - 1``.
        per_step_bn_weights: BNWB: every inner step has its own batch-norm offset and scale. Each
            ``bn{i}_offset`` / ``bn{i}_scale`` meta-parameter is replaced by a meta-parameter
            ``bn{i}_offset_per_step`` of shape ``[T, C]`` (initialized to T copies of the shared one, which
            stays a meta-parameter with a zero hypergradient): the support pass of step ``t`` and the query
            losses after step ``t`` use row ``t - 1``; evaluation step ``t`` uses row ``min(t, T) - 1``
            (default False).
        per_step_bn_statistics: BNRS: per-step running batch-norm statistics, accumulated in meta-training
            and used at evaluation instead of the batch's statistics. For every batch-norm layer (the
            layers sharing one ``bn{i}_offset``: the support and the query pass of block ``i``) the
            variables ``bn{i}_offset_running_mean`` / ``_running_variance`` of shape ``[T + 1, C]``
            (starting at 0 and 1) hold, in row ``s``, the statistics of the network at ``theta_s``: rows
            ``0..T-1`` those of the support pass of step ``s + 1``, row ``T`` those of the query pass after
            the last step. After every applied meta-update ``r <- m r + (1 - m) mean_tasks(batch)``
            (``m = bn_momentum``; batch variance without Bessel correction). At evaluation
            (``BOMLOptimizer.adapted``) the support pass of step ``t`` normalizes with row
            ``min(t, T) - 1`` and the evaluated tensors with row ``T``, so an episode's prediction does
            not depend on the other query examples (default False). Meta-training still normalizes with
            the batch's statistics. One ``ul_problem`` (one, possibly batched, experiment) only.
        bn_momentum: ``m`` of ``per_step_bn_statistics`` (default 0.9, PyTorch's momentum 0.1).
    """

    multi_step_loss: bool = False
    msl_anneal_iterations: int = 1000
    first_order_iterations: int = 0
    learn_step_sizes: bool = False
    per_step_bn_weights: bool = False
    per_step_bn_statistics: bool = False
    bn_momentum: float = 0.9

    def validate(self, owner):
        super().validate(owner)
        if isinstance(self.bn_momentum, bool) or not isinstance(self.bn_momentum, (int, float, np.floating)) \
                or not 0 <= self.bn_momentum < 1:
            raise InvalidArgumentError(
                f"{owner}: bn_momentum must be a number in [0, 1); received {self.bn_momentum!r}. Try 0.9.")
        for name in ("multi_step_loss", "learn_step_sizes", "per_step_bn_weights", "per_step_bn_statistics"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(
                    f"{owner}: {name} must be True or False; received {getattr(self, name)!r}.")
        if not (isinteger(self.msl_anneal_iterations) and self.msl_anneal_iterations >= 1):
            raise InvalidArgumentError(
                f"{owner}: msl_anneal_iterations must be a positive integer; received "
                f"{self.msl_anneal_iterations!r}. Try 1000.")
        if not (isinteger(self.first_order_iterations) and self.first_order_iterations >= 0):
            raise InvalidArgumentError(
                f"{owner}: first_order_iterations must be an integer >= 0; received "
                f"{self.first_order_iterations!r}.")


@extension.register_upper_iter("MAML++")
class BOMLOuterGradMAMLPlusPlus(BOMLOuterGrad):
    """MAML's meta-gradient with MAML++'s multi-step loss and derivative-order annealing.

    With ``theta_t = Phi_t(theta_{t-1})`` the real inner steps of the ``Simple`` lower
    strategy (any optimizer, learned step sizes, mask) and ``s(k)`` 0 for the first
    ``first_order_iterations`` meta-iterations, 1 after::

        d_t = s(k) g_t + (1 - s(k)) stop_gradient(g_t)          (same value, first or second order)
        dF/dx = d/dx sum_{t=1..T} w_t(k) F(theta_t)             (multi_step_loss)
        dF/dx = d/dx F(theta_T)                                   (otherwise)

    With ``learn_step_sizes`` (LSLR) step ``t`` uses the step size ``lslr[t-1, i]`` for the
    task variable ``i`` instead of the inner learning rate, and ``lslr`` receives its
    hypergradient like the other meta-parameters. With ``per_step_bn_weights`` (BNWB) the
    batch-norm offset and scale of step ``t`` are ``beta[t-1]``, ``gamma[t-1]``::

        theta_t = theta_{t-1} - alpha_t * grad f(theta_{t-1}; beta[t-1], gamma[t-1])
        F_t = F(theta_t; beta[t-1], gamma[t-1])

    Both are installed as the lower strategy's ``step_plan``, so ``BOMLOptimizer.adapted``
    (evaluation) adapts with them too. The weights and the switch are fed at
    every ``run`` (``feed_dict``), so one graph serves the whole schedule. With
    ``first_order=True`` in ``ll_problem`` the meta-gradient is first order throughout.

    References:
        Antoniou, Edwards and Storkey, "How to train your MAML", ICLR 2019.
    """

    Options = MAMLPlusPlusOptions
    inner_methods = ("Simple",)

    def __init__(self, inner_method=None, truncate_iter=-1, **options):
        super().__init__(inner_method=inner_method, truncate_iter=truncate_iter, **options)
        self.second_order = tf.placeholder_with_default(tf.constant(1.0, tf.float64), [], name="second_order")
        self.loss_weights = tf.placeholder(tf.float64, [None], name="multi_step_loss_weights")
        self._T = None
        #: The LSLR step sizes ``[T, len(var_list)]`` (a meta-parameter), or None.
        self.step_sizes = None
        #: BNWB's ``(shared batch-norm parameter, per-step parameter [T, C])`` pairs.
        self.per_step_bn = []
        #: BNRS's ``RunningStatistics``, one per batch-norm offset.
        self.statistics = []

    def compute_gradients(self, outer_objective, inner_grad, meta_param=None, param_dict=None):
        """See ``BOMLOuterGrad.compute_gradients``; adds ``lslr`` and the per-step batch norm to ``meta_param``.

        Raises:
            InvalidCombinationError: ``learn_step_sizes`` with a learned inner step size.
            InvalidArgumentError: ``learn_step_sizes`` with a learning rate that is not a constant;
                ``per_step_bn_weights`` without batch-norm parameters among the meta-parameters.
        """
        if meta_param is None:
            meta_param = tf.get_collection(extension.GraphKeys.METAPARAMETERS)
        meta_param = list(meta_param)
        if self.config.per_step_bn_weights:
            meta_param = self._per_step_batch_norm(meta_param, inner_grad.T)
        if self.config.learn_step_sizes:
            if inner_grad.config.learn_lr:
                raise InvalidCombinationError(
                    "outer_method MAML++ with learn_step_sizes=True learns its own per-layer per-step step sizes; "
                    "received ll_problem(learn_lr=True). Use one of the two.")
            if self.step_sizes is None:
                value = tf.get_static_value(inner_grad.learning_rate)
                if value is None:
                    raise InvalidArgumentError(
                        "MAML++ learn_step_sizes initializes the step sizes to the inner learning rate, which must "
                        f"be a number; received {inner_grad.learning_rate!r}.")
                dtype = inner_grad.var_list[0].dtype.base_dtype.as_numpy_dtype
                self.step_sizes = extension.get_outerparameter(
                    "lslr", np.full([inner_grad.T, len(inner_grad.var_list)], value, dtype))
            if not any(p is self.step_sizes for p in meta_param):
                meta_param.append(self.step_sizes)
        if self.config.per_step_bn_statistics:
            if self._records:
                raise InvalidArgumentError(
                    "MAML++ per_step_bn_statistics=True records the batch-norm layers of one ul_problem (one "
                    "experiment); received a second ul_problem. Batch the tasks in one experiment "
                    "(BOMLExperiment(meta_batch_size=...)), or leave per_step_bn_statistics=False.")
            self.statistics = self._running_statistics(meta_param, inner_grad, outer_objective)
        if self.step_sizes is not None or self.per_step_bn or self.statistics:
            inner_grad.step_plan = StepPlan(T=inner_grad.T, step_sizes=self.step_sizes,
                                            replacements=list(self.per_step_bn), statistics=list(self.statistics))
        return super().compute_gradients(outer_objective, inner_grad, meta_param=meta_param, param_dict=param_dict)

    def _running_statistics(self, meta_param, inner_grad, outer_objective):
        """BNRS's variables and the batch-norm calls of the support and the query pass, per offset."""
        offsets = [p for p in batch_norm_parameters(meta_param) if p.op.name.endswith("_offset")]
        support_ops = _ancestors(inner_grad.inner_objective)
        query_ops = _ancestors(inner_grad.on_task_variables(outer_objective))
        statistics = []
        for offset in offsets:
            layers = [layer for layer in batch_norm_layers()
                      if hasattr(layer.offset, "ref") and layer.offset.ref() == offset.ref()]
            support = [layer for layer in layers if layer.output.op in support_ops]
            query = [layer for layer in layers if layer.output.op in query_ops]
            if not support or not query:
                continue
            shape = [inner_grad.T + 1] + offset.shape.as_list()
            dtype = offset.dtype.base_dtype
            with tf.init_scope():
                mean = tf.Variable(tf.zeros(shape, dtype), trainable=False, name=f"{offset.op.name}_running_mean")
                variance = tf.Variable(tf.ones(shape, dtype), trainable=False,
                                       name=f"{offset.op.name}_running_variance")
            statistics.append(RunningStatistics(mean=mean, variance=variance, support=support, query=query))
        if not statistics:
            raise InvalidArgumentError(
                "MAML++ per_step_bn_statistics=True found no batch-norm layer (boml.setup_model.network_utils."
                "batch_norm with an offset named bn{i}_offset among the meta-parameters) in both the inner and the "
                "outer objective. Build the network with norm='batch_norm', or leave per_step_bn_statistics=False.")
        return statistics

    def task_extras(self, dynamics):
        """BNRS: the batch moments ``[T + 1, C]`` (mean, variance) of each layer in this task's passes."""
        return list(getattr(dynamics, "batch_moments", []))

    def task_extra_dtypes(self):
        return [s.mean.dtype.base_dtype for s in self.statistics for _ in range(2)]

    def _batch_moments(self, dynamics, states):
        """Per statistics: the support pass's moments at ``theta_{s}`` (step ``s + 1``), the query's at ``theta_T``."""
        moments = []
        T = len(states) - 1
        for stats in self.statistics:
            xs = [dynamics.at_state(dynamics.local([stats.support[0].input])[0], states[t - 1], t)
                  for t in range(1, T + 1)]
            xs.append(dynamics.at_state(dynamics.local([stats.query[0].input])[0], states[T], T))
            means, variances = [], []
            for x in xs:
                x = tf.stop_gradient(x)
                axes = list(range(x.shape.ndims - 1))
                mean = tf.reduce_mean(x, axes)
                means.append(mean)
                variances.append(tf.reduce_mean(tf.square(x - mean), axes))
            dtype = stats.mean.dtype.base_dtype
            moments += [tf.cast(tf.stack(means), dtype), tf.cast(tf.stack(variances), dtype)]
        return moments

    def adapted_state_assignment(self):
        """The adapted state, and BNRS's moving averages of the meta-batch's moments (after an applied update)."""
        op = super().adapted_state_assignment()
        if not self.statistics:
            return op
        m = self.config.bn_momentum
        assigns = [op]
        for index, stats in enumerate(self.statistics):
            for offset, var in ((0, stats.mean), (1, stats.variance)):
                batch = tf.reduce_mean(tf.concat([r["extras"][2 * index + offset] for r in self._records], 0), 0)
                assigns.append(tf.assign(var, m * var + (1 - m) * batch))
        return tf.group(*assigns, name="adapted_state_and_running_statistics")

    def _per_step_batch_norm(self, meta_param, T):
        """``meta_param`` with each batch-norm parameter replaced by its per-step copy (created once)."""
        if not self.per_step_bn:
            shared = batch_norm_parameters(meta_param)
            if not shared:
                raise InvalidArgumentError(
                    "MAML++ per_step_bn_weights=True found no batch-norm parameter (a variable named bn{i}_offset or "
                    f"bn{{i}}_scale) among the meta-parameters {[p.op.name for p in meta_param]}. Build the network "
                    "with norm='batch_norm', or leave per_step_bn_weights=False.")
            for param in shared:
                start = tf.tile(tf.expand_dims(param.initial_value, 0), [T] + [1] * param.shape.ndims)
                self.per_step_bn.append((param, extension.get_outerparameter(f"{param.op.name}_per_step", start)))
        # The shared parameters stay meta-parameters (each task's reads of them go through their task-local
        # copies, which the step plan replaces) with a zero hypergradient: no objective reads them any more.
        return meta_param + [q for _, q in self.per_step_bn if not any(q is p for p in meta_param)]

    def weights(self, global_step):
        """The multi-step loss weights at meta-iteration ``global_step`` (``[0, ..., 1]`` without it)."""
        return multi_step_loss_weights(global_step, self._T, self.config.msl_anneal_iterations,
                                       final_only=not self.config.multi_step_loss)

    def feed_dict(self, global_step):
        """Feeds the weights and the derivative order of meta-iteration ``global_step``."""
        order = 0.0 if global_step < self.config.first_order_iterations else 1.0
        return {self.loss_weights: self.weights(global_step), self.second_order: order}

    def task_hypergradients(self, dynamics):
        self._T = dynamics.T
        state = dynamics.initial_state()
        slots = dynamics.initial_slots(state)
        switch = None if self.config.first_order_iterations == 0 else tf.cast(self.second_order, state[0].dtype)
        losses, states = [], [state]
        for t in range(1, dynamics.T + 1):
            hyper = dynamics.hyperparameters_at(t)  # LSLR's step sizes of step t (the step plan)
            direction = dynamics.direction(t, state, hyper)
            if switch is not None:
                direction = [tf.stop_gradient(g) + switch * (g - tf.stop_gradient(g)) for g in direction]
            state, slots = dynamics.apply_direction(t, state, slots, direction, hyper)
            states.append(state)
            if self.config.multi_step_loss or t == dynamics.T:
                losses.append(dynamics.outer_value(state, t))
        if self.config.multi_step_loss:
            weights = tf.cast(self.loss_weights, losses[0].dtype)
            objective = tf.add_n([weights[t] * loss for t, loss in enumerate(losses)])
        else:
            objective = losses[-1]
        if self.statistics:
            dynamics.batch_moments = self._batch_moments(dynamics, states)
        grads = tf.gradients(objective, dynamics.meta_locals)
        shared = {p.ref() for p, _ in self.per_step_bn}
        grads = [tf.zeros_like(local) if g is None and p.ref() in shared else g
                 for g, p, local in zip(grads, dynamics.meta_params, dynamics.meta_locals)]
        return grads, state


def _ancestors(tensor):
    """The operations ``tensor`` depends on (inputs and control inputs)."""
    seen, stack = set(), [tensor.op]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen
