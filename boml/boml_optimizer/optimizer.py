"""``BOMLOptimizer``: the facade that wires data, networks, lower and upper strategies.

Typical use (MAML on a batched experiment)::

    ex = boml.BOMLExperiment(dataset, meta_batch_size=4)
    boml_ho = boml.BOMLOptimizer("MetaInit", "Simple", "Simple")
    meta_learner = boml_ho.meta_learner(ex.x, dataset, meta_model="V1")
    ex.model = boml_ho.base_learner(ex.x, meta_learner)
    inner_objective = boml.utils.cross_entropy(ex.model.out, ex.y)
    inner_grad = boml_ho.ll_problem(inner_objective, learning_rate=0.4, T=5, experiment=ex,
                                    var_list=ex.model.var_list)
    outer_objective = boml.utils.cross_entropy(ex.model.re_forward(ex.x_).out, ex.y_)
    boml_ho.ul_problem(outer_objective, meta_learning_rate=1e-3, inner_grad=inner_grad,
                       meta_param=tf.get_collection(boml.extension.GraphKeys.METAPARAMETERS))
    boml_ho.aggregate_all()

Building ends at ``aggregate_all``; ``run`` performs one meta-iteration with a
single ``session.run`` (lower dynamics, hypergradients and meta-update are all
in the graph).
"""
import collections
import inspect
import re

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension, utils
from boml.boml_optimizer.combinations import check_combination
from boml.errors import (DivergenceError, InvalidArgumentError, NotFinalizedError, PhaseError,
                         UnknownNameError, describe_allowed)
from boml.graph_mode import check_graph_mode
from boml.optimizer import make_optimizer
from boml.task import map_over_tasks

OUTER_OPTIMIZERS = {
    "Adam": lambda lr, momentum: tf.train.AdamOptimizer(lr),
    "Momentum": lambda lr, momentum: tf.train.MomentumOptimizer(lr, momentum),
    "SGD": lambda lr, momentum: tf.train.GradientDescentOptimizer(lr),
}
LR_GRANULARITIES = ("element", "tensor", "scalar")


def _default_tolerance(k):
    return 0.1 * 0.9 ** k


class BOMLOptimizer:
    """Builds and runs a bilevel meta-learning problem.

    Args:
        method: ``"MetaInit"`` (meta-initialization: MAML, FMAML, Meta-SGD,
            MT-net, WarpGrad) or ``"MetaFeat"`` (meta-features: RHG, TRHG, HOAG,
            DARTS, BDA).
        inner_method: lower strategy name: ``"Simple"``, ``"Trad"`` or ``"Aggr"``.
        outer_method: upper strategy name: ``"Simple"``, ``"Reptile"``,
            ``"Reverse"``, ``"Forward"``, ``"Implicit"`` or ``"Darts"``.
        truncate_iter: -1 for full Reverse; K >= 0 back-propagates through the
            last K inner steps only (TRHG).
        experiments: optional list of ``BOMLExperiment`` (informational).

    Raises:
        InvalidCombinationError: the triple is not in the allowed table.
        UnknownNameError: a strategy name is not registered.
        GraphModeError: TensorFlow executes eagerly.
    """

    def __init__(self, method=None, inner_method=None, outer_method=None, truncate_iter=-1, experiments=None):
        check_graph_mode("BOMLOptimizer")
        check_combination(method, inner_method, outer_method)
        self._method = method
        self._inner_method = inner_method
        self._outer_method = outer_method
        self._inner_class = extension.LOWER_ITERS.get(inner_method)
        self._outer_class = extension.UPPER_ITERS.get(outer_method)
        if not isinstance(truncate_iter, int) or isinstance(truncate_iter, bool) or truncate_iter < -1:
            raise InvalidArgumentError(
                f"truncate_iter must be -1 (full back-propagation) or an integer K >= 0; received {truncate_iter!r}."
            )
        if truncate_iter >= 0 and not getattr(self._outer_class, "supports_truncation", False):
            raise InvalidArgumentError(
                f"truncate_iter={truncate_iter} only applies to outer_method='Reverse' (TRHG); received "
                f"outer_method={outer_method!r}. Leave truncate_iter=-1."
            )
        self._truncate_iter = truncate_iter
        self.experiments = list(experiments or [])
        with tf.variable_scope(None, default_name="boml") as scope:
            self._scope = scope
            self._global_step = tf.get_variable("global_step", initializer=tf.constant(0, tf.int64),
                                                trainable=False)
        self._param_dict = collections.OrderedDict()
        self._inner_grads = []
        self._inner_objectives = []
        self._outergradient = None
        self._meta_learning_rate = None
        self._outer_optimizer = None
        self._learning_rate = None
        self._learned_rates = None
        self._bda = None
        self._network_factory = None
        self._meta_model = None
        self._meta_learner = None
        self._meta_update = None
        self._grads_and_vars = None
        self._fetches = None
        self._python_steps = {}

    # ------------------------------------------------------------------------ properties
    @property
    def method(self):
        return self._method

    @property
    def meta_model(self):
        return self._meta_model

    @property
    def outergradient(self):
        """The upper strategy instance (created by the first ``ul_problem``)."""
        return self._outergradient

    @property
    def innergradient(self):
        """The lower strategy class."""
        return self._inner_class

    @property
    def learning_rate(self):
        return self._learning_rate

    @property
    def meta_learning_rate(self):
        return self._meta_learning_rate

    @property
    def global_step(self):
        return self._global_step

    @property
    def param_dict(self):
        """Read-only view of the settings shared by all tasks (for compatibility)."""
        return dict(self._param_dict)

    @property
    def inner_objectives(self):
        return list(self._inner_objectives)

    @property
    def truncate_iter(self):
        return self._truncate_iter

    # ------------------------------------------------------------------------ networks
    def meta_learner(self, _input, dataset=None, meta_model="V1", name="Hyper_Net", use_t=False, use_warp=False,
                     model_loss_func=utils.cross_entropy, outer_loss_func=utils.cross_entropy, **model_args):
        """Builds the meta-learner network (its variables are the meta-parameters).

        The network is looked up in ``boml.extension.NETWORKS`` as
        ``<dataset name><method><meta_model>`` (e.g. ``OmniglotMetaInitV1``) and
        falls back to ``<method><meta_model>``.

        Args:
            _input: input placeholder (usually ``ex.x``).
            dataset: the ``Datasets`` (gives the dataset name and number of classes).
            meta_model: ``"V1"``/``"v1"`` (conv-4) or a registered version.
            name: variable scope.
            use_t: add MT-net T-layers (MetaInit).
            use_warp: add WarpGrad warp layers.
            model_loss_func, outer_loss_func: kept for compatibility.
            **model_args: passed to the network.

        Returns:
            The network object.
        """
        self._check_building("meta_learner")
        version = str(meta_model)
        if re.fullmatch(r"[vV]\d+", version):  # "v1" (the original's default) means "V1"
            version = version.upper()
        dataset_name = getattr(getattr(dataset, "train", dataset), "name", None) if dataset is not None else None
        candidates = ([f"{dataset_name}{self._method}{version}"] if dataset_name else []) + \
            [f"{self._method}{version}"]
        factory = None
        for candidate in candidates:
            if candidate in extension.NETWORKS:
                factory = extension.NETWORKS.get(candidate)
                break
        if factory is None:
            raise UnknownNameError(
                f"No network registered for meta_model={meta_model!r} (looked for {candidates}). Registered networks: "
                f"{describe_allowed(extension.NETWORKS.names())}. Register one with boml.extension.register_network."
            )
        kwargs = dict(model_args)
        dim_output = self._dim_output(dataset, kwargs)
        kwargs.update(name=name, use_t=use_t, use_warp=use_warp, outer_method=self._outer_method)
        if self._method == "MetaInit":
            if dim_output is None:
                raise InvalidArgumentError(
                    "meta_learner needs the number of classes: pass dataset=<Datasets> or dim_output=<int>."
                )
            kwargs["dim_output"] = dim_output
        self._param_dict["dim_output"] = dim_output
        net = factory(_input, **kwargs)
        self._network_factory = (factory, {k: v for k, v in kwargs.items() if k != "name"})
        self._meta_model = version
        self._meta_learner = net
        self._param_dict.update(use_t=use_t, use_warp=use_warp, model_loss_func=model_loss_func,
                                outer_loss_func=outer_loss_func, meta_model=version, meta_learner=net)
        return net

    @staticmethod
    def _dim_output(dataset, model_args):
        if "dim_output" in model_args:
            return model_args.pop("dim_output")
        train = getattr(dataset, "train", dataset)
        return getattr(train, "dim_target", None)

    def base_learner(self, _input, meta_learner, name="task_net", weights_initializer=tf.zeros_initializer):
        """Builds the task network whose variables the lower level adapts.

        MetaInit: a copy of the meta-learner whose task variables start every
        episode from the meta-parameters. MetaFeat: a linear classifier
        (``BOMLNetFeedForward``) on the meta-learner's features ``_input``,
        re-initialized with ``weights_initializer`` (zeros) at every episode.
        """
        self._check_building("base_learner")
        if self._method == "MetaInit":
            if self._network_factory is None:
                raise PhaseError("Call meta_learner(...) before base_learner(...).")
            factory, kwargs = self._network_factory
            return factory(_input, name=name, outer_param_dict=meta_learner.outer_param_dict,
                           model_param_dict=meta_learner.model_param_dict, **kwargs)
        from boml.setup_model import BOMLNetFeedForward

        dims = self._param_dict.get("dim_output")
        if dims is None:
            raise InvalidArgumentError(
                "base_learner for MetaFeat needs the number of classes: pass dataset=<Datasets> (or "
                "dim_output=<int>) to meta_learner, or call set_output_dim(N) first."
            )
        return BOMLNetFeedForward(_input, dims=dims, output_weight_initializer=weights_initializer, name=name,
                                  data_type=_input.dtype.base_dtype)

    def set_output_dim(self, dim_output):
        """Number of classes of the MetaFeat base learner (when no experiment was given)."""
        self._param_dict["dim_output"] = int(dim_output)

    # ------------------------------------------------------------------------ lower level
    def ll_problem(self, inner_objective, learning_rate, T, var_list=None, experiment=None,
                   inner_objective_optimizer="SGD", outer_objective=None, learn_lr=False, learn_st=False,
                   alpha_init=0.0, s=1.0, t=1.0, learn_alpha=False, learn_alpha_itr=False, first_order=False,
                   loss_func=utils.cross_entropy, momentum=0.5, lr_granularity="element", l1_reg=0.0, l2_reg=0.0,
                   use_mask=False, mask_init=0.0, mask_temperature=1.0, **inner_kargs):
        """Defines the lower-level problem of one task (or one batched experiment).

        Args:
            inner_objective: scalar tensor ``f`` on the task variables (any
                regularizers included; it is used at every inner step).
            learning_rate: inner step size (positive number).
            T: number of inner steps.
            var_list: task variables (default ``experiment.model.var_list``).
            experiment: the ``BOMLExperiment`` the objective was built on.
            inner_objective_optimizer: ``"SGD"``, ``"Momentum"``, ``"Adam"`` or a
                registered name; its update rule is differentiated.
            outer_objective: the query loss, needed by ``Aggr`` (BDA).
            learn_lr: learn the step size (Meta-SGD); see ``lr_granularity``.
            learn_st, s, t: BDA weights of the upper/lower gradients (learned if
                ``learn_st``).
            alpha_init, learn_alpha, learn_alpha_itr: BDA aggregation weight, its
                learning, and one weight per step.
            first_order: FOMAML (directions treated as constants).
            loss_func: kept for compatibility (the user's objective is used).
            momentum: momentum of the ``Momentum`` inner optimizer.
            lr_granularity: with ``learn_lr``: ``"element"`` (one step size per
                parameter entry, as in Meta-SGD), ``"tensor"`` (one per variable)
                or ``"scalar"`` (one shared, as the original BOML).
            l1_reg, l2_reg: rates of ``l1 * sum|y|`` and ``l2 * sum y^2 / 2`` over
                ``var_list``, added to the inner objective (so applied at every step).
            use_mask: MT-net's learned update mask: one logit per output unit of
                every task variable; only the units whose sampled mask is 1 adapt.
            mask_init: initial mask logit (0 gives probability 1/2).
            mask_temperature: temperature of the relaxed Bernoulli sample.
            **inner_kargs: optimizer settings (``beta1``, ``beta2``, ``epsilon``,
                ``use_nesterov``).

        Returns:
            The lower strategy object (pass it to ``ul_problem``).
        """
        self._check_building("ll_problem")
        if experiment is not None and experiment not in self.experiments:
            self.experiments.append(experiment)
        if var_list is None:
            model = getattr(experiment, "model", None)
            if model is None:
                raise InvalidArgumentError(
                    "ll_problem needs the task variables: pass var_list=ex.model.var_list, or set ex.model to the "
                    "base learner and pass experiment=ex."
                )
            var_list = model.var_list
        var_list = list(var_list)
        if not var_list:
            raise InvalidArgumentError(
                "var_list is empty: the lower level has no task variables to adapt. Pass var_list=ex.model.var_list "
                "after setting ex.model = boml_ho.base_learner(...)."
            )
        self._check_learning_rate(learning_rate)
        if lr_granularity not in LR_GRANULARITIES:
            raise InvalidArgumentError(
                f"lr_granularity must be one of {LR_GRANULARITIES}; received {lr_granularity!r}."
            )
        for rate, name in ((l1_reg, "l1_reg"), (l2_reg, "l2_reg")):
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
                raise InvalidArgumentError(f"{name} must be a number >= 0; received {rate!r}.")
        if l2_reg:
            inner_objective = inner_objective + utils.get_L2Reg(var_list, l2_reg)
        if l1_reg:
            inner_objective = inner_objective + utils.get_L1Reg(var_list, l1_reg)
        rates = self._inner_learning_rates(learning_rate, var_list, learn_lr, lr_granularity)
        optimizer = make_optimizer(inner_objective_optimizer, self._learning_rate, momentum=momentum, **inner_kargs)
        config = {}
        if self._inner_method == "Aggr":
            config.update(self._bda_parameters(T, alpha_init, s, t, learn_alpha, learn_alpha_itr, learn_st,
                                               var_list[0].dtype.base_dtype.as_numpy_dtype))
        if use_mask:
            config.update(mask_logits=self._mask_logits(var_list, mask_init), mask_temperature=mask_temperature)
        inner_grad = self._inner_class(inner_objective, var_list, optimizer, T, learning_rates=rates,
                                       outer_objective=outer_objective, experiment=experiment,
                                       first_order=first_order, **config)
        self._inner_grads.append(inner_grad)
        self._inner_objectives.append(inner_objective)
        self._param_dict.update(learning_rate=self._learning_rate, T=T, loss_func=loss_func, experiment=experiment,
                                first_order=first_order)
        if learn_lr:
            self._param_dict["learn_lr"] = True
        return inner_grad

    @staticmethod
    def _check_learning_rate(learning_rate):
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.floating)):
            if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
                return
            raise InvalidArgumentError(
                f"learning_rate must be a positive number; received {learning_rate!r}."
            )
        if not np.isfinite(learning_rate) or learning_rate <= 0:
            raise InvalidArgumentError(
                f"learning_rate must be a positive finite number; received {learning_rate!r}. Try 0.1 or 0.4."
            )

    def _inner_learning_rates(self, learning_rate, var_list, learn_lr, granularity):
        if self._learned_rates is None:
            with tf.variable_scope(self._scope, auxiliary_name_scope=False):
                with tf.name_scope(self._scope.original_name_scope):
                    dtype = var_list[0].dtype.base_dtype
                    if not learn_lr:
                        if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
                            self._learning_rate = tf.cast(learning_rate, dtype, name="lr")
                        else:
                            self._learning_rate = tf.constant(learning_rate, dtype, name="lr")
                        self._learned_rates = [self._learning_rate] * len(var_list)
                    elif granularity == "scalar":
                        self._learning_rate = extension.get_outerparameter(
                            "lr", np.asarray(learning_rate, dtype.as_numpy_dtype))
                        self._learned_rates = [self._learning_rate] * len(var_list)
                    else:
                        self._learned_rates = []
                        for index, var in enumerate(var_list):
                            shape = var.shape.as_list() if granularity == "element" else []
                            value = np.full(shape, learning_rate, dtype=var.dtype.base_dtype.as_numpy_dtype)
                            self._learned_rates.append(extension.get_outerparameter(f"lr_{index}", value))
                        self._learning_rate = self._learned_rates[0]
        if len(self._learned_rates) != len(var_list):
            raise InvalidArgumentError(
                f"Every task must adapt the same number of variables; the first task had "
                f"{len(self._learned_rates)}, this one has {len(var_list)}."
            )
        return list(self._learned_rates)

    def _mask_logits(self, var_list, mask_init):
        """MT-net mask logits, one per output unit (last axis) of each task variable, shared by all tasks."""
        if getattr(self, "_masks", None) is None:
            with tf.variable_scope(self._scope, auxiliary_name_scope=False):
                with tf.name_scope(self._scope.original_name_scope):
                    self._masks = [
                        extension.get_outerparameter(
                            f"mask_logit_{index}",
                            np.full(var.shape.as_list()[-1:], mask_init, var.dtype.base_dtype.as_numpy_dtype))
                        for index, var in enumerate(var_list)]
        return list(self._masks)

    def _bda_parameters(self, T, alpha_init, s, t, learn_alpha, learn_alpha_itr, learn_st, dtype):
        if self._bda is None:
            with tf.variable_scope(self._scope, auxiliary_name_scope=False):
                with tf.name_scope(self._scope.original_name_scope):
                    if learn_alpha_itr:
                        alpha = extension.get_outerparameter("alpha", np.full([T], alpha_init, dtype))
                    elif learn_alpha:
                        alpha = extension.get_outerparameter("alpha", np.asarray(alpha_init, dtype))
                    else:
                        alpha = tf.constant(alpha_init, dtype, name="alpha")
                    if learn_st:
                        s_value = extension.get_outerparameter("s", np.asarray(s, dtype))
                        t_value = extension.get_outerparameter("t", np.asarray(t, dtype))
                    else:
                        s_value, t_value = tf.constant(s, dtype, name="s"), tf.constant(t, dtype, name="t")
            self._bda = {"alpha": alpha, "s": s_value, "t": t_value}
            self._param_dict.update(self._bda)
        return dict(self._bda)

    # ------------------------------------------------------------------------ upper level
    def ul_problem(self, outer_objective, meta_learning_rate, inner_grad, mlr_decay=1e-5, meta_param=None,
                   outer_objective_optimizer="Adam", epsilon=0.01, momentum=0.5, warp_lambda=1.0,
                   warp_objective="trajectory",
                   tolerance=_default_tolerance, cg_max_iter=50, cg_damping=0.0,
                   parallel_iterations=16, forward_max_dim=1000):
        """Defines the upper-level problem of one task (or batched experiment).

        Args:
            outer_objective: scalar tensor ``F`` (query loss) on the task variables.
            meta_learning_rate: outer step size ``mlr0``; the schedule is
                ``mlr0 / (1 + mlr_decay * k)`` at meta-iteration ``k``.
            inner_grad: the object returned by ``ll_problem`` for this task.
            mlr_decay: inverse-time decay rate of the meta learning rate.
            meta_param: meta-parameters to learn (default: METAPARAMETERS collection).
            outer_objective_optimizer: ``"Adam"``, ``"Momentum"`` or ``"SGD"``.
            epsilon: DARTS finite-difference scale.
            momentum: momentum of the ``Momentum`` outer optimizer.
            warp_lambda: WarpGrad weight of the initialization's hypergradient.
            warp_objective: WarpGrad meta-objective, ``"trajectory"`` (published) or
                ``"unrolled"`` (the original BOML's variant).
            tolerance: Implicit CG tolerance schedule ``k -> float``.
            cg_max_iter: Implicit CG iteration cap.
            cg_damping: Implicit: solve with ``H + cg_damping * I``.
            parallel_iterations: tasks of a batched experiment run concurrently.
            forward_max_dim: Forward: cap on the number of scalar hyperparameters.

        Returns:
            self.
        """
        self._check_building("ul_problem")
        if not any(inner_grad is g for g in self._inner_grads):
            raise InvalidArgumentError(
                "inner_grad must be the object returned by this optimizer's ll_problem(...) for the same task."
            )
        if self._meta_learning_rate is None:
            self._check_learning_rate(meta_learning_rate)
            if outer_objective_optimizer not in OUTER_OPTIMIZERS:  # checked before any state is set
                raise UnknownNameError(
                    f"Unknown outer_objective_optimizer {outer_objective_optimizer!r}; allowed: "
                    f"{describe_allowed(OUTER_OPTIMIZERS)}."
                )
            self._meta_learning_rate = tf.train.inverse_time_decay(
                float(meta_learning_rate), self._global_step, decay_steps=1, decay_rate=mlr_decay)
            self._outer_optimizer = OUTER_OPTIMIZERS[outer_objective_optimizer](self._meta_learning_rate, momentum)
        if self._outergradient is None:
            options = {"truncate_iter": self._truncate_iter, "epsilon": epsilon, "warp_lambda": warp_lambda,
                       "warp_objective": warp_objective,
                       "use_warp": self._param_dict.get("use_warp", False), "tolerance": tolerance,
                       "cg_max_iter": cg_max_iter, "cg_damping": cg_damping, "parallel_iterations": parallel_iterations,
                       "forward_max_dim": forward_max_dim}
            self._outergradient = self._outer_class(inner_method=self._inner_method,
                                                    **_accepted(self._outer_class, options))
        self._outergradient.compute_gradients(outer_objective, inner_grad, meta_param=meta_param)
        return self

    def aggregate_all(self, aggregation_fn=None, gradient_clip=None):
        """Averages the task hypergradients and builds the meta-update; ends graph building.

        Args:
            aggregation_fn: maps stacked per-task hypergradients (task axis
                first) to one tensor (default: mean).
            gradient_clip: function applied to each aggregated hypergradient,
                e.g. ``lambda g: tf.clip_by_value(g, -10., 10.)``.

        Returns:
            ``self.run``.
        """
        self._check_building("aggregate_all")
        if self._outergradient is None:
            raise PhaseError("aggregate_all() needs at least one ul_problem(...) call before it.")
        pairs = self._outergradient.outer_grads_and_vars(aggregation_fn=aggregation_fn, gradient_clip=gradient_clip)
        self._grads_and_vars = pairs
        with tf.name_scope("meta_update"):
            apply = self._outer_optimizer.apply_gradients(pairs)
            with tf.control_dependencies([apply]):
                self._meta_update = tf.assign_add(self._global_step, 1)
        outer_losses = self._outergradient.outer_losses
        inner_losses = self._outergradient.inner_losses
        self._fetches = {"update": self._meta_update, "outer_loss": tf.reduce_mean(outer_losses),
                         "inner_loss": tf.reduce_mean(inner_losses)}
        return self.run

    @property
    def meta_update_op(self):
        return self._meta_update

    @property
    def hypergradients(self):
        """The aggregated ``(hypergradient, meta-parameter)`` pairs applied by ``run``."""
        if self._meta_update is None:
            raise NotFinalizedError("hypergradients are built by aggregate_all(); call it first.")
        return list(self._grads_and_vars)

    # ------------------------------------------------------------------------ evaluation
    def adapted(self, tensors, inner_grad=None, T=None):
        """``tensors`` evaluated after adapting each task with the training dynamics.

        The tensors are built on the task variables (like the outer objective,
        e.g. an accuracy on ``ex.model.re_forward(ex.x_).out``). Each task is
        adapted with the same inner optimizer, learned step sizes and BDA
        aggregation used in training, without any hypergradient graph.

        Args:
            tensors: a tensor or list of tensors.
            inner_grad: the lower strategy of the experiment (default: the first).
            T: number of adaptation steps (default: the training T).

        Returns:
            Matching tensors with a leading task axis.
        """
        inner_grad = inner_grad or (self._inner_grads[0] if self._inner_grads else None)
        if inner_grad is None:
            raise PhaseError("adapted(...) needs an ll_problem(...) first.")
        single = not isinstance(tensors, (list, tuple))
        items = [tensors] if single else list(tensors)
        meta = tf.get_collection(extension.GraphKeys.METAPARAMETERS)

        def task_fn(task):
            final = inner_grad.unroll(task, differentiable=False, T=T).final
            return [tf.stop_gradient(v) for v in task.at_state(task.local(items), final)]

        with tf.name_scope("adapted"):
            outputs = map_over_tasks(inner_grad.experiment, meta, inner_grad.var_list, task_fn,
                                     [t.dtype.base_dtype for t in items])
        return outputs[0] if single else outputs

    # ------------------------------------------------------------------------ run
    def run(self, inner_objective_feed_dicts=None, outer_objective_feed_dicts=None, initializer_feed_dict=None,
            session=None):
        """Performs one meta-iteration (one ``session.run``).

        Args:
            inner_objective_feed_dicts: feed dict (or callable of the step) for
                the support placeholders.
            outer_objective_feed_dicts: feed dict (or callable) for the query ones.
            initializer_feed_dict: extra feeds.
            session: the session (default: the default session).

        Returns:
            dict with the mean ``outer_loss`` and ``inner_loss`` of the meta-batch.

        Raises:
            NotFinalizedError: ``aggregate_all`` was not called.
            DivergenceError: a loss became NaN or infinite.
        """
        if self._meta_update is None:
            raise NotFinalizedError(
                "run() was called before aggregate_all(). Call boml_ho.aggregate_all() once all tasks are defined."
            )
        session = session or tf.get_default_session()
        if session is None:
            raise InvalidArgumentError("run() needs a session: pass session=sess or call it inside 'with sess:'.")
        step = self._python_step(session)
        feed = utils.merge_dicts(utils.maybe_call(inner_objective_feed_dicts, step),
                                 utils.maybe_call(outer_objective_feed_dicts, step),
                                 utils.maybe_call(initializer_feed_dict, step))
        if hasattr(self._outergradient, "feed_dict"):
            feed.update(self._outergradient.feed_dict(step))
        for inner_grad in self._inner_grads:
            if inner_grad.experiment is not None:
                inner_grad.experiment.check_training_feed(feed)
        values = session.run(self._fetches, feed_dict=feed)
        self._python_steps[id(session)] = step + 1
        losses = {"outer_loss": float(values["outer_loss"]), "inner_loss": float(values["inner_loss"])}
        if not all(np.isfinite(v) for v in losses.values()):
            raise DivergenceError(
                f"The meta-iteration {step} produced non-finite losses {losses}. Lower the inner learning_rate or "
                f"the meta_learning_rate, or clip the hypergradients with aggregate_all(gradient_clip=...)."
            )
        return losses

    def _python_step(self, session):
        key = id(session)
        if key not in self._python_steps:
            self._python_steps[key] = int(session.run(self._global_step))
        return self._python_steps[key]

    def sync_step(self, session):
        """Re-reads the global step (after restoring a checkpoint)."""
        self._python_steps[id(session)] = int(session.run(self._global_step))

    # ------------------------------------------------------------------------ helpers
    def _check_building(self, what):
        if self._meta_update is not None:
            raise PhaseError(
                f"{what}() was called after aggregate_all(): the graph of this BOMLOptimizer is complete. "
                f"Define every task before aggregate_all(), or create a new BOMLOptimizer."
            )


def _accepted(cls, options):
    """The subset of ``options`` that ``cls.__init__`` names explicitly (all if it takes **kwargs)."""
    parameters = inspect.signature(cls.__init__).parameters
    names = set(parameters)
    chain = [c for c in cls.__mro__ if "__init__" in c.__dict__]
    for klass in chain:
        names.update(inspect.signature(klass.__init__).parameters)
    return {k: v for k, v in options.items() if k in names}
