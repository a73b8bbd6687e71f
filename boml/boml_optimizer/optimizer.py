"""``BOMLOptimizer``: the facade that wires data, networks, lower and upper strategies.

``meta_learner``/``base_learner`` build the networks (``networks.py``), ``ll_problem``/``ul_problem`` the lower
and upper strategies, ``aggregate_all`` the guarded meta-update (``meta_update.py``), and ``run`` performs one
meta-iteration (one ``session.run``). It only wires: the strategies own their options, variables and maths.
"""
import collections

import tensorflow.compat.v1 as tf

from boml import extension, utils
from boml.boml_optimizer.combinations import check_combination
from boml.boml_optimizer.meta_update import DEFAULT_MLR_DECAY, OUTER_OPTIMIZERS, MetaUpdate, StepCounter, \
    outer_optimizer
from boml.boml_optimizer.networks import build_base_learner, build_meta_learner, task_variables
from boml.errors import InvalidArgumentError, NotFinalizedError, PhaseError
from boml.graph_mode import check_graph_mode

__all__ = ["BOMLOptimizer", "OUTER_OPTIMIZERS"]  # the outer optimizer names are read by the workflow


class BOMLOptimizer:
    """Builds and runs a bilevel meta-learning problem.

    Args:
        method: ``"MetaInit"`` (meta-initialization: MAML, FMAML, Meta-SGD, MT-net,
            WarpGrad) or ``"MetaFeat"`` (meta-features: RHG, TRHG, HOAG, DARTS, BDA).
        inner_method: lower strategy name: ``"Simple"``, ``"Trad"`` or ``"Aggr"``.
        outer_method: upper strategy name: ``"Simple"``, ``"Reptile"``, ``"Reverse"``,
            ``"Forward"``, ``"Implicit"`` or ``"Darts"``.
        truncate_iter: -1 for full Reverse; K >= 0 back-propagates through the
            last K inner steps only (TRHG).
        experiments: optional list of ``BOMLExperiment`` (informational).

    Raises:
        InvalidCombinationError: the triple is not in the table derived from the strategies.
        UnknownNameError: a strategy name is not registered.
        GraphModeError: TensorFlow executes eagerly.
    """

    def __init__(self, method=None, inner_method=None, outer_method=None, truncate_iter=-1, experiments=None):
        check_graph_mode("BOMLOptimizer")
        check_combination(method, inner_method, outer_method)
        self._method, self._inner_method, self._outer_method = method, inner_method, outer_method
        self._inner_class = extension.LOWER_ITERS.get(inner_method)
        self._outer_class = extension.UPPER_ITERS.get(outer_method)
        self._outer_class.check_truncation(truncate_iter)
        self._truncate_iter = truncate_iter
        self.experiments = list(experiments or [])
        with tf.variable_scope(None, default_name="boml") as scope:
            self._scope = scope
            self._global_step = tf.get_variable("global_step", initializer=tf.constant(0, tf.int64),
                                                trainable=False)
        self._param_dict, self._networks, self._inner_grads, self._meta_params = collections.OrderedDict(), [], [], {}
        self._outergradient = self._meta_learning_rate = self._outer_optimizer = self._update = None
        self._steps = StepCounter(self._global_step)

    # ------------------------------------------------------------------------ properties
    method = property(lambda self: self._method)
    meta_model = property(lambda self: self._param_dict.get("meta_model"))
    outergradient = property(lambda self: self._outergradient, doc="The upper strategy (after ul_problem).")
    innergradient = property(lambda self: self._inner_class, doc="The lower strategy class.")
    meta_learning_rate = property(lambda self: self._meta_learning_rate)
    global_step = property(lambda self: self._global_step)
    truncate_iter = property(lambda self: self._truncate_iter)
    param_dict = property(lambda self: dict(self._param_dict), doc="Read-only view of the shared settings.")
    inner_objectives = property(lambda self: [g.inner_objective for g in self._inner_grads])
    meta_update_op = property(lambda self: self._update.op if self._update else None)
    learning_rate = property(lambda self: self._inner_grads[0].learning_rate if self._inner_grads else None)

    def get_global_step(self):
        """The meta-iteration counter (the original's name)."""
        return self._global_step

    # ------------------------------------------------------------------------ networks
    def meta_learner(self, _input, dataset=None, meta_model="V1", name="Hyper_Net", use_t=False, use_warp=False,
                     model_loss_func=utils.cross_entropy, outer_loss_func=utils.cross_entropy, **model_args):
        """Builds the meta-learner network (its variables are the meta-parameters).

        The network is looked up in ``boml.extension.NETWORKS`` as
        ``<dataset name><method><meta_model>`` (e.g. ``OmniglotMetaInitV1``), falling
        back to ``<method><meta_model>``; ``meta_model`` ``"v1"`` means ``"V1"``.
        ``use_t`` adds MT-net T-layers, ``use_warp`` WarpGrad warp layers;
        ``model_loss_func`` and ``outer_loss_func`` are kept for compatibility;
        ``model_args`` go to the network.

        Returns:
            The network object.
        """
        self._check_building("meta_learner")
        net, self._network_factory, settings = build_meta_learner(
            self._method, _input, dataset, meta_model, name, use_t, use_warp, model_args)
        self._networks.append(net)
        self._param_dict.update(settings, model_loss_func=model_loss_func, outer_loss_func=outer_loss_func,
                                meta_learner=net)
        return net

    def base_learner(self, _input, meta_learner, name="task_net", weights_initializer=tf.zeros_initializer):
        """Builds the task network whose variables the lower level adapts.

        MetaInit: a copy of the meta-learner whose task variables start every
        episode from the meta-parameters. MetaFeat: a linear classifier
        (``BOMLNetFeedForward``) on the meta-learner's features ``_input``,
        re-initialized with ``weights_initializer`` (zeros) at every episode.
        """
        self._check_building("base_learner")
        net = build_base_learner(self._method, _input, meta_learner, name, weights_initializer,
                                 getattr(self, "_network_factory", None), self._param_dict.get("dim_output"))
        self._networks.append(net)
        return net

    def set_output_dim(self, dim_output):
        """Number of classes of the MetaFeat base learner (when no experiment was given)."""
        self._param_dict["dim_output"] = int(dim_output)

    # ------------------------------------------------------------------------ lower level
    def ll_problem(self, inner_objective, learning_rate, T, var_list=None, experiment=None,
                   inner_objective_optimizer="SGD", outer_objective=None, learn_lr=False, learn_st=False,
                   alpha_init=0.0, s=1.0, t=1.0, learn_alpha=False, learn_alpha_itr=False, first_order=False,
                   loss_func=utils.cross_entropy, momentum=0.5, initial_state=None, **options):
        """Defines the lower-level problem of one task (or one batched experiment).

        Args:
            inner_objective: scalar tensor ``f`` on the task variables.
            learning_rate: inner step size (positive number).
            T: number of inner steps.
            var_list: task variables (default ``experiment.model.var_list``).
            experiment: the ``BOMLExperiment`` the objective was built on.
            inner_objective_optimizer: ``"SGD"``, ``"Momentum"``, ``"Adam"`` or a registered name (differentiated).
            outer_objective: the query loss, needed by ``Aggr`` (BDA).
            learn_lr: learn the step size: ONE scalar ``lr`` as in the original (``lr_granularity`` for finer ones).
            learn_st, s, t, alpha_init, learn_alpha, learn_alpha_itr: BDA's
                aggregation settings (``Aggr`` only; see ``AggrOptions``).
            first_order: FOMAML (directions treated as constants).
            loss_func: kept for compatibility (the user's objective is used).
            momentum: momentum of the ``Momentum`` inner optimizer.
            initial_state: episode start of each task variable (default: handed
                over by the network that owns the variables, see ``BOMLNet.initial_state``).
            **options: the lower strategy's other options (``LowerOptions``: ``lr_granularity``,
                ``l1_reg``, ``l2_reg``, the ``mask_*`` and inner optimizer settings; registered strategies' own).

        Returns:
            The lower strategy object (pass it to ``ul_problem``).

        Raises:
            UnknownOptionError: an option is not one of the lower strategy's.
        """
        self._check_building("ll_problem")
        if experiment is not None and experiment not in self.experiments:
            self.experiments.append(experiment)
        var_list, initial_state = task_variables(experiment, var_list, initial_state, self._networks)
        inner_grad = self._inner_class(
            inner_objective, var_list, inner_objective_optimizer, T, learning_rate=learning_rate,
            outer_objective=outer_objective, experiment=experiment, first_order=first_order,
            initial_state=initial_state, share_with=self._inner_grads[0] if self._inner_grads else None,
            scope=self._scope, learn_lr=learn_lr, learn_st=learn_st, alpha_init=alpha_init, s=s, t=t,
            learn_alpha=learn_alpha, learn_alpha_itr=learn_alpha_itr, momentum=momentum, **options)
        self._inner_grads.append(inner_grad)
        if getattr(experiment, "model", None) is not None:
            experiment.model = inner_grad.user_model(experiment.model)
        self._param_dict.update(inner_grad.shared_settings(), loss_func=loss_func)
        return inner_grad

    # ------------------------------------------------------------------------ upper level
    def ul_problem(self, outer_objective, meta_learning_rate, inner_grad, mlr_decay=DEFAULT_MLR_DECAY, meta_param=None,
                   outer_objective_optimizer="Adam", epsilon=0.01, momentum=0.5, warp_lambda=1.0, tolerance=None,
                   meta_lr_schedule="inverse_time", meta_lr_min=0.0, meta_lr_period=None, **options):
        """Defines the upper-level problem of one task (or batched experiment).

        Args:
            outer_objective: scalar tensor ``F`` (query loss) on the task variables.
            meta_learning_rate: outer step size ``mlr0``.
            inner_grad: the object returned by ``ll_problem`` for this task.
            mlr_decay: ``mlr0 / (1 + mlr_decay * k)`` at meta-iteration ``k`` (``meta_lr_schedule="inverse_time"``).
            meta_lr_schedule, meta_lr_min, meta_lr_period: ``"cosine"`` anneals ``mlr0`` to ``meta_lr_min`` over
                ``meta_lr_period`` meta-iterations (MAML++; see ``meta_update.outer_optimizer``).
            meta_param: meta-parameters to learn (default: METAPARAMETERS collection).
            outer_objective_optimizer: ``"Adam"``, ``"Momentum"`` or ``"SGD"``.
            epsilon: ``Darts``' finite-difference scale.
            momentum: momentum of the ``Momentum`` outer optimizer.
            warp_lambda: ``Simple`` with warp layers: weight of the initialization's hypergradient.
            tolerance: ``Implicit``'s CG tolerance schedule ``k -> float`` (None: ``0.1 * 0.9**k``).
            **options: the upper strategy's other options (``cg_max_iter``, ``parallel_iterations``,
                ``task_memory_budget``, MAML++'s, ...; registered strategies' own options).

        Returns:
            self.

        Raises:
            UnknownOptionError: an option is not one of the upper strategy's.
            InvalidCombinationError: the upper strategy is not defined for the
                lower strategy's optimizer, learned step size or mask.
        """
        self._check_building("ul_problem")
        if not any(inner_grad is g for g in self._inner_grads):
            raise InvalidArgumentError(
                "inner_grad must be the object returned by this optimizer's ll_problem(...) for the same task."
            )
        if self._meta_learning_rate is None:
            self._meta_learning_rate, self._outer_optimizer = outer_optimizer(
                outer_objective_optimizer, meta_learning_rate, mlr_decay, momentum, self._global_step, meta_param,
                meta_lr_schedule, meta_lr_min, meta_lr_period)
        if self._outergradient is None:
            self._outergradient = self._outer_class(
                inner_method=self._inner_method, truncate_iter=self._truncate_iter, epsilon=epsilon,
                tolerance=tolerance, warp_lambda=warp_lambda, use_warp=self._param_dict.get("use_warp", False),
                **options)
        meta_param = self._outergradient.compute_gradients(outer_objective, inner_grad, meta_param=meta_param)
        self._meta_params[id(inner_grad)] = meta_param
        return self

    def aggregate_all(self, aggregation_fn=None, gradient_clip=None):
        """Aggregates the task hypergradients and builds the meta-update; ends graph building.

        Args:
            aggregation_fn: maps the list of per-task hypergradients of one
                meta-parameter to one tensor, as in the original (default: the mean).
            gradient_clip: function applied to each aggregated hypergradient,
                e.g. ``lambda g: tf.clip_by_value(g, -10., 10.)``.

        Returns:
            ``self.run``.
        """
        self._check_building("aggregate_all")
        if self._outergradient is None:
            raise PhaseError("aggregate_all() needs at least one ul_problem(...) call before it.")
        self._update = MetaUpdate(self._outergradient, self._outer_optimizer, self._global_step, aggregation_fn,
                                  gradient_clip, {"meta_learning_rate": self._meta_learning_rate,
                                                  "inner learning_rate": self.learning_rate})
        return self.run

    @property
    def hypergradients(self):
        """The aggregated ``(hypergradient, meta-parameter)`` pairs applied by ``run``."""
        if self._update is None:
            raise NotFinalizedError("hypergradients are built by aggregate_all(); call it first.")
        return list(self._update.pairs)

    # ------------------------------------------------------------------------ evaluation
    def adapted(self, tensors, inner_grad=None, T=None):
        """``tensors`` evaluated after adapting each task with the training dynamics.

        The tensors are built on the task variables (e.g. an accuracy on
        ``ex.model.re_forward(ex.x_).out``); each task is adapted with the inner
        optimizer, step sizes and BDA aggregation of training (deterministic MT-net
        mask), against the meta-parameters given to ``ul_problem`` for that task.

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
        meta = self._meta_params.get(id(inner_grad), tf.get_collection(extension.GraphKeys.METAPARAMETERS))
        return inner_grad.adapted_values(tensors, meta, T)

    # ------------------------------------------------------------------------ run
    def run(self, inner_objective_feed_dicts=None, outer_objective_feed_dicts=None, initializer_feed_dict=None,
            session=None):
        """Performs one meta-iteration (one ``session.run``).

        Afterwards the task variables hold the adapted state of the (last) task.

        Args:
            inner_objective_feed_dicts: feed dict (or callable of the step) for the support placeholders.
            outer_objective_feed_dicts: feed dict (or callable) for the query ones.
            initializer_feed_dict: extra feeds.
            session: the session (default: the default session).

        Returns:
            dict with the mean ``outer_loss`` and ``inner_loss`` of the meta-batch.

        Raises:
            NotFinalizedError: ``aggregate_all`` was not called.
            DivergenceError: a loss or hypergradient was not finite; the update was not applied.
            InvalidArgumentError: a placeholder the graph needs was not fed, or an in-graph check failed.
        """
        if self._update is None:
            raise NotFinalizedError(
                "run() was called before aggregate_all(). Call boml_ho.aggregate_all() once all tasks are defined."
            )
        feeds = (inner_objective_feed_dicts, outer_objective_feed_dicts, initializer_feed_dict)
        return self._update.run(session, feeds, self._inner_grads, self._steps)

    def sync_step(self, session):
        """Re-reads the global step (after restoring a checkpoint)."""
        self._steps.sync(session)

    def _check_building(self, what):
        if self._update is not None:
            raise PhaseError(
                f"{what}() was called after aggregate_all(): the graph of this BOMLOptimizer is complete. "
                f"Define every task before aggregate_all(), or create a new BOMLOptimizer.")

