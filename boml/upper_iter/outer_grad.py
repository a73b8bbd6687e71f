"""Upper-level strategies: how the hypergradient ``dF/dx`` of a task is computed.

Every strategy is written against the per-task ``TaskDynamics`` contract of the
lower strategy (``boml.lower_iter.dynamics``): it receives one dynamics object per
task and returns the hypergradients (aligned with the meta-parameters) and the
final state. The base class evaluates the outer and inner objectives there once,
averages over the tasks of the meta-batch (``outer_grads_and_vars``), and
``BOMLOptimizer.aggregate_all`` applies the outer optimizer, so one ``session.run``
performs a whole meta-iteration.
"""
import dataclasses
import math

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import DetachedOuterParameterError, InvalidArgumentError, InvalidCombinationError
from boml.lower_iter.dynamics import add_gradients
from boml.strategy_options import StrategyOptions
from boml.task import map_over_tasks

__all__ = ["BOMLOuterGrad", "UpperOptions", "RecomputeOptions", "add_gradients", "gradients_or_none"]


def _dtype(tensor_or_var):
    return tensor_or_var.dtype.base_dtype


@dataclasses.dataclass(frozen=True)
class UpperOptions(StrategyOptions):
    """Options shared by the upper strategies.

    Attributes:
        parallel_iterations: tasks of a batched experiment processed concurrently (at most).
        task_memory_budget: GB (2**30 bytes) of estimated task activations computed at once:
            fewer than ``parallel_iterations`` tasks run concurrently when the activations of
            one task (the static sizes of the task body's outputs, ``boml.task.activation_bytes``,
            an upper bound of what it keeps alive) times the tasks exceed it; at least one task
            runs. Default None: no budget (``parallel_iterations`` tasks). A memory saving that
            costs time: on the MiniImageNet residual V2 (20.9 GB estimated per task, MAML,
            meta-batch 4) ``task_memory_budget=8`` runs one task at a time and lowered the peak RSS
            from 10.2 to 5.8 GB, but the meta-iteration took 1.7 times as long (docs/performance.rst).
            The hypergradients do not depend on it.
        vectorize_tasks: ``"auto"`` (default), True or False. Vectorized, a group of tasks is
            computed at once, every operation of the per-task body (derivatives included) once
            for the whole group (``boml.vectorize``): convolutions with per-task filters as
            grouped convolutions, batch norm over tasks x channels. Same numbers as the
            per-task map (float64 tests). The group is the largest divisor of the meta-batch
            up to ``parallel_iterations`` whose estimated activations fit ``task_memory_budget``;
            the groups run one after the other. ``"auto"`` also keeps each group under
            ``boml.task.AUTO_VECTORIZE_GB`` (2 GB) and otherwise quietly keeps the per-task map:
            a gain for many small tasks (Omniglot conv-4 MAML, meta-batch 32: groups of 8,
            0.72-0.76x plain TensorFlow's time, 1.7x its memory), a loss for few large ones (MiniImageNet
            V1, meta-batch 4: 1.6x the time vectorized), which keep the map. True vectorizes
            whatever the size, with a ``VectorizationWarning`` when it cannot; False always
            maps. A body that cannot be vectorized (an inner ``tf.while_loop``, ...) keeps the
            map (``task_maps`` says why). Vectorized meta-training feeds must hold
            ``meta_batch_size`` tasks (the task axis is static; ``ShapeError`` otherwise).
            docs/performance.rst has the figures.
    """

    parallel_iterations: int = 16
    task_memory_budget: float = None
    vectorize_tasks: object = "auto"

    def validate(self, owner):
        value = self.parallel_iterations
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{owner}: parallel_iterations must be a positive integer; received {value!r}.")
        budget = self.task_memory_budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                                   or not math.isfinite(budget) or budget <= 0):
            raise InvalidArgumentError(
                f"{owner}: task_memory_budget must be a positive number of GB or None (no budget); received "
                f"{budget!r}. Pass for example task_memory_budget=8.")
        if not (isinstance(self.vectorize_tasks, bool) or self.vectorize_tasks == "auto"):
            raise InvalidArgumentError(
                f"{owner}: vectorize_tasks must be 'auto', True or False; received {self.vectorize_tasks!r}.")


@dataclasses.dataclass(frozen=True)
class RecomputeOptions(UpperOptions):
    """Options of the strategies that back-propagate through the inner trajectory (``Reverse``, ``Simple``).

    Attributes:
        recompute_every: gradient checkpointing of the inner trajectory. None (default): the reverse
            pass keeps every step's intermediates (memory linear in T). K: the forward pass keeps the
            state every K steps and the reverse pass recomputes each segment of K steps from its
            checkpoint (about T/K + K steps' memory for one more forward pass of time;
            ``TaskDynamics.reverse_hypergradients``). ``"sqrt"``: K = ceil(sqrt(T)). The
            hypergradients do not depend on it; docs/performance.rst has the measured trade.
    """

    recompute_every: object = None

    def validate(self, owner):
        super().validate(owner)
        value = self.recompute_every
        if value is None or value == "sqrt":
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(
                f"{owner}: recompute_every must be None (keep every step), a positive segment length or 'sqrt'; "
                f"received {value!r}. Pass for example recompute_every='sqrt' or recompute_every=32.")


class BOMLOuterGrad:
    """Base class of the upper-level strategies.

    Subclasses implement ``task_hypergradients(dynamics)`` and declare which lower
    strategies, inner optimizers and features they are defined for; the table
    of allowed combinations (``boml.boml_optimizer.allowed_triples``) is derived
    from these declarations.

    Args:
        inner_method: name of the lower strategy (kept for compatibility).
        truncate_iter: only meaningful for strategies that support truncation.
        shared_defaults: see ``StrategyOptions.from_options`` (default: the class's ``shared_defaults``).
        **options: the strategy's ``Options``.

    Raises:
        InvalidArgumentError: ``truncate_iter`` is invalid or not supported.
        UnknownOptionError: an option is not one of the strategy's.
    """

    #: The option record of the strategy.
    Options = UpperOptions
    #: Names of the lower strategies this strategy is defined for.
    inner_methods = ()
    #: Names of the inner optimizers it is defined for (None: any).
    inner_optimizers = None
    #: Whether it gives learned step sizes a hypergradient.
    supports_learned_lr = True
    #: Whether it supports the MT-net update mask.
    supports_mask = True
    #: True if the strategy honours ``truncate_iter``.
    supports_truncation = False
    #: ``ul_problem`` keywords that only some upper strategies take, at their "not set" values.
    shared_defaults = {"epsilon": 0.01, "warp_lambda": 1.0, "tolerance": None, "use_warp": False}

    def __init__(self, inner_method=None, truncate_iter=-1, shared_defaults=None, **options):
        self.check_truncation(truncate_iter)
        self.inner_method = inner_method
        self.truncate_iter = truncate_iter
        self.config = self.Options.from_options(f"outer_method {type(self).__name__}", options,
                                                self.shared_defaults if shared_defaults is None else shared_defaults)
        self._records = []
        self._initialization = self._iteration = None

    @classmethod
    def check_truncation(cls, truncate_iter):
        """Refuses an invalid ``truncate_iter``, or one this strategy does not use.

        Raises:
            InvalidArgumentError: not -1 or an integer >= 0, or >= 0 without ``supports_truncation``.
        """
        if not isinstance(truncate_iter, int) or isinstance(truncate_iter, bool) or truncate_iter < -1:
            raise InvalidArgumentError(
                f"truncate_iter must be -1 (no truncation) or an integer K >= 0; received {truncate_iter!r}."
            )
        if truncate_iter >= 0 and not cls.supports_truncation:
            names = [name for name in extension.UPPER_ITERS if extension.UPPER_ITERS.get(name) is cls]
            received = f"outer_method={names[0]!r}" if names else cls.__name__
            raise InvalidArgumentError(
                f"truncate_iter={truncate_iter} only applies to outer_method='Reverse' (TRHG); {received} does not "
                f"truncate. Leave truncate_iter=-1 or use Reverse."
            )

    @property
    def parallel_iterations(self):
        return self.config.parallel_iterations

    @property
    def task_maps(self):
        """One dict per batched experiment: ``"concurrent_tasks"`` (``parallel_iterations`` or fewer, by
        ``task_memory_budget``; the group size when vectorized), ``"activation_bytes"`` (the estimate for one
        task) and ``"vectorized"`` (with ``"vectorization_error"`` when ``vectorize_tasks`` was asked for
        but the body runs in the map); empty before ``compute_gradients`` and for unbatched experiments."""
        return [dict(r["task_map"]) for r in self._records if r["task_map"]]

    # --------------------------------------------------------------------------------- contract
    @classmethod
    def check_lower(cls, inner_grad):
        """Refuses a lower strategy whose optimizer or features this strategy is not defined for.

        Raises:
            InvalidCombinationError: the inner optimizer, a learned step size or the
                MT-net mask is not supported.
        """
        name = cls.__name__
        optimizer = inner_grad.optimizer_name
        if cls.inner_optimizers is not None and optimizer not in cls.inner_optimizers:
            raise InvalidCombinationError(
                f"outer_method {name} is defined for the inner optimizers {list(cls.inner_optimizers)} only; "
                f"received inner_objective_optimizer={optimizer!r}. Choose one of those, or outer_method='Reverse'."
            )
        if inner_grad.config.learn_lr and not cls.supports_learned_lr:
            raise InvalidCombinationError(
                f"outer_method {name} gives a learned step size no hypergradient; received learn_lr=True. "
                f"Use learn_lr=False, or outer_method='Reverse' / 'Simple'."
            )
        if inner_grad.config.use_mask and not cls.supports_mask:
            raise InvalidCombinationError(
                f"outer_method {name} does not support the MT-net update mask; received use_mask=True. "
                f"Use use_mask=False, or outer_method='Reverse' / 'Simple'."
            )

    def task_hypergradients(self, dynamics):
        """Builds the hypergradients of one task.

        Args:
            dynamics: the task's ``TaskDynamics``.

        Returns:
            ``(hypergradients, final_state)``: a list aligned with
            ``dynamics.meta_params`` (None where the parameter has no influence)
            and the adapted state ``y_T`` (list of tensors).
        """
        raise NotImplementedError

    def compute_gradients(self, outer_objective, inner_grad, meta_param=None, param_dict=None):
        """Builds the per-task hypergradients of one experiment (or task group).

        Args:
            outer_objective: scalar tensor ``F`` built on the task variables.
            inner_grad: the object returned by ``ll_problem``.
            meta_param: list of meta-parameters (default: the METAPARAMETERS collection).
            param_dict: unused, kept for compatibility.

        Returns:
            The list of meta-parameters.

        Raises:
            DetachedOuterParameterError: a meta-parameter has no influence on ``F``.
            InvalidCombinationError: see ``check_lower``.
            InvalidArgumentError: ``truncate_iter`` exceeds the lower strategy's ``T``.
        """
        self.check_lower(inner_grad)
        if self.truncate_iter > inner_grad.T:
            raise InvalidArgumentError(
                f"truncate_iter={self.truncate_iter} is larger than the number of inner steps T={inner_grad.T}: "
                f"TRHG back-propagates through the last K <= T steps. Pass truncate_iter between 0 and {inner_grad.T} "
                f"(or -1 for full Reverse)."
            )
        outer_objective = inner_grad.on_task_variables(outer_objective)
        if meta_param is None:
            meta_param = tf.get_collection(extension.GraphKeys.METAPARAMETERS)
        meta_param = list(meta_param)
        if not meta_param:
            raise InvalidArgumentError(
                "meta_param is empty: there is nothing for the outer problem to learn. Build the meta-learner "
                "first, or pass meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS)."
            )
        objective_dtype = _dtype(outer_objective)
        n_meta = len(meta_param)

        def task_fn(task):
            dynamics = inner_grad.task_dynamics(task, outer_objective, training=True)
            grads, final = self.task_hypergradients(dynamics)
            # The values at the final state the hypergradient was taken at are the ones it built (the query
            # forward is not computed twice); the map's outputs carry no gradient.
            values = [tf.stop_gradient(tf.cast(dynamics.outer_value(final), objective_dtype)),
                      tf.stop_gradient(tf.cast(dynamics.inner_value(final), objective_dtype)),
                      tf.stop_gradient(tf.cast(dynamics.inner_value(dynamics.initial_state()), objective_dtype))]
            final = [tf.stop_gradient(y) for y in final]
            detached = [p.name for p, g in zip(meta_param, grads) if g is None]
            if detached:
                raise DetachedOuterParameterError(
                    f"The meta-parameter(s) {detached} have no influence on the outer objective under "
                    f"outer_method={type(self).__name__}. Remove them from meta_param, or make the outer "
                    f"objective depend on them (an Implicit or Darts hypergradient ignores a learned "
                    f"learning rate)."
                )
            return values + list(grads) + final + list(self.task_extras(dynamics))

        n_vars = len(inner_grad.var_list)
        dtypes = ([objective_dtype] * 3 + [_dtype(p) for p in meta_param]
                  + [_dtype(v) for v in inner_grad.var_list] + list(self.task_extra_dtypes()))
        with tf.name_scope(type(self).__name__):
            report = {}
            outputs = map_over_tasks(inner_grad.experiment, meta_param, inner_grad.var_list, task_fn, dtypes,
                                     self.parallel_iterations, training=True,
                                     memory_budget_gb=self.config.task_memory_budget, report=report,
                                     vectorize=self.config.vectorize_tasks)
        self._records.append({"meta_param": meta_param, "outer_losses": outputs[0], "inner_losses": outputs[1],
                              "start_inner_losses": outputs[2],
                              "hypergradients": outputs[3:3 + n_meta],
                              "final_states": outputs[3 + n_meta:3 + n_meta + n_vars],
                              "extras": outputs[3 + n_meta + n_vars:], "inner_grad": inner_grad, "task_map": report})
        return meta_param

    def task_extras(self, dynamics):
        """Further per-task outputs of ``task_hypergradients`` (stacked over tasks in ``record["extras"]``)."""
        return []

    def task_extra_dtypes(self):
        """The dtypes of ``task_extras``."""
        return []

    # --------------------------------------------------------------------------------- aggregate
    @property
    def outer_losses(self):
        """Outer objective of every task (concatenated over experiments)."""
        return tf.concat([r["outer_losses"] for r in self._records], axis=0) if self._records else None

    @property
    def inner_losses(self):
        """Inner objective at the adapted state of every task."""
        return tf.concat([r["inner_losses"] for r in self._records], axis=0) if self._records else None

    @property
    def start_inner_losses(self):
        """Inner objective at the episode start of every task (before the inner loop)."""
        return tf.concat([r["start_inner_losses"] for r in self._records], axis=0) if self._records else None

    def outer_grads_and_vars(self, meta_param=None, aggregation_fn=None, gradient_clip=None):
        """Aggregated ``(hypergradient, meta-parameter)`` pairs.

        Args:
            meta_param: restrict to these parameters (default: all).
            aggregation_fn: maps the LIST of per-task hypergradients of one
                meta-parameter to one tensor, as in the original (``tf.add_n``
                works); default: the mean over tasks.
            gradient_clip: optional function applied to each aggregated hypergradient.
        """
        per_param, order = {}, []
        for record in self._records:
            for param, grads in zip(record["meta_param"], record["hypergradients"]):
                if param.ref() not in per_param:
                    per_param[param.ref()] = []
                    order.append(param)
                per_param[param.ref()].append((grads, _task_count(record["inner_grad"].experiment)))
        wanted = None if meta_param is None else {p.ref() for p in meta_param}
        pairs = []
        for param in order:
            if wanted is not None and param.ref() not in wanted:
                continue
            stacks = per_param[param.ref()]
            if aggregation_fn is None:
                grad = tf.reduce_mean(tf.concat([stacked for stacked, _ in stacks], axis=0), axis=0)
            else:
                grad = aggregation_fn([g for stacked, count in stacks for g in tf.unstack(stacked, num=count)])
            if gradient_clip is not None:
                grad = gradient_clip(grad)
            tf.add_to_collection(extension.GraphKeys.OUTERGRADIENTS, grad)
            pairs.append((grad, param))
        return pairs

    # --------------------------------------------------------------------------------- task variables
    def adapted_state_assignment(self):
        """Op writing the adapted state of the last task of every experiment into its task variables.

        Run after the meta-update by ``BOMLOptimizer.run``, so that, as in the
        original, the task variables hold the adapted state of the last task run.
        """
        assigns = []
        for record in self._records:
            for var, stacked in zip(record["inner_grad"].var_list, record["final_states"]):
                assigns.append(tf.assign(var, tf.cast(stacked[-1], var.dtype.base_dtype)))
        return tf.group(*assigns, name="adapted_state")

    @property
    def initialization(self):
        """Op resetting every task variable to its episode start (the original's ``initialization``)."""
        if self._initialization is None:
            inits = [record["inner_grad"].initialization for record in self._records]
            self._initialization = tf.group(*inits, name="outer_initialization")
        return self._initialization

    @property
    def state(self):
        """The task variables of every experiment (the original's ``state``)."""
        seen, result = set(), []
        for record in self._records:
            for var in record["inner_grad"].var_list:
                if var.ref() not in seen:
                    seen.add(var.ref())
                    result.append(var)
        return result

    @property
    def iteration(self):
        """One inner step of every lower strategy, then its task variables' values (the original's ``iteration``).

        A list with one entry per lower strategy (see ``BOMLInnerGrad.iteration``);
        ``session.run`` of it performs the steps and returns the new values.
        """
        if self._iteration is None:
            strategies = []
            for record in self._records:
                if not any(record["inner_grad"] is s for s in strategies):
                    strategies.append(record["inner_grad"])
            self._iteration = [strategy.iteration for strategy in strategies]
        return self._iteration

    def apply_gradients(self, inner_objective_feed_dicts=None, outer_objective_feed_dicts=None,
                        initializer_feed_dict=None, param_dict=None, session=None, global_step=None):
        """Kept for compatibility: boml computes hypergradients inside the meta-update run."""
        return None


def _task_count(experiment):
    """Tasks per meta-iteration of an experiment: its ``meta_batch_size``, or 1."""
    if experiment is not None and getattr(experiment, "is_batched", False):
        return int(experiment.meta_batch_size)
    return 1


def gradients_or_none(ys, xs, grad_ys=None):
    """``tf.gradients`` that returns an empty list for an empty ``xs``."""
    return tf.gradients(ys, xs, grad_ys=grad_ys) if xs else []


