"""Lower-level strategies: the T-step dynamics that replace ``argmin_y f(x, y)``.

A lower strategy turns the user's inner objective into the dynamical system

    y_0 = Psi_0(x),    y_t = y_{t-1} - eta * M * d_t(x, y_{t-1})   (t = 1..T)

(for SGD; Momentum and Adam transform ``M * d_t`` the way they transform a
gradient), where ``d_t`` is the *direction* of step ``t`` and ``M`` the optional
MT-net mask. ``BOMLInnerGradTrad`` uses the gradient of the inner objective,
``BOMLInnerGradAggr`` (BDA) mixes it with the gradient of the outer objective,
``BOMLInnerGradSimple`` is the MAML inner loop.

A strategy owns its options (a frozen ``LowerOptions`` record) and the
variables they need (learned step sizes, mask logits, BDA's weights); it hands
the upper strategy one ``TaskDynamics`` per task (``task_dynamics``).
"""
import collections
import dataclasses
import inspect

import numpy as np
import tensorflow.compat.v1 as tf

from boml import extension, utils
from boml.errors import InvalidArgumentError
from boml.lower_iter.adapted_model import AdaptedModel, pull_back
from boml.lower_iter.dynamics import StepHyperparameters, TaskDynamics, Trajectory
from boml.optimizer import BOMLOpt, make_optimizer
from boml.strategy_options import StrategyOptions

__all__ = ["BOMLInnerGrad", "BOMLInnerGradTrad", "LowerOptions", "Trajectory", "inner_gradient",
           "LR_GRANULARITIES"]

LR_GRANULARITIES = ("scalar", "tensor", "element")
#: Prefix of the messages of boml's in-graph checks (``BOMLOptimizer.run`` turns them into boml's errors).
GRAPH_CHECK_MARKER = "boml check:"
_OPTIMIZER_OPTIONS = ("momentum", "beta1", "beta2", "epsilon", "use_nesterov", "epsilon_inside_sqrt")


def _number(value, name, owner, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or value < minimum:
        raise InvalidArgumentError(f"{owner}: {name} must be a number >= {minimum}; received {value!r}.")


@dataclasses.dataclass(frozen=True)
class LowerOptions(StrategyOptions):
    """Options shared by the lower strategies.

    Attributes:
        learn_lr: learn the inner step size (Meta-SGD); see ``lr_granularity``.
        lr_granularity: with ``learn_lr``: ``"scalar"`` (one step size ``lr``, as the
            original BOML; default), ``"tensor"`` (one per task variable) or
            ``"element"`` (one per entry, as in the Meta-SGD paper).
        l1_reg, l2_reg: rates of ``l1 * sum|y|`` and ``l2 * sum y^2 / 2`` over the task
            variables, added to the inner objective (so to every step's direction).
        use_mask: MT-net's learned update mask (one logit per output unit of every
            task variable; only the units whose mask is 1 adapt).
        mask_init: initial mask logit (0 gives probability 1/2).
        mask_temperature: temperature of the relaxed Bernoulli sample.
        mask_noise: sample the training mask with logistic noise (MT-net); False
            uses the deterministic relaxation ``sigmoid(logit / temperature)``.
        momentum, beta1, beta2, epsilon, use_nesterov, epsilon_inside_sqrt: settings
            of the inner optimizer (only those its constructor takes; ``momentum`` at
            its default 0.5 is ignored by the optimizers without momentum).
            ``epsilon_inside_sqrt=True`` gives Adam the original BOML's
            ``sqrt(v + epsilon^2)`` (see ``BOMLOptAdam``).
    """

    learn_lr: bool = False
    lr_granularity: str = "scalar"
    l1_reg: float = 0.0
    l2_reg: float = 0.0
    use_mask: bool = False
    mask_init: float = 0.0
    mask_temperature: float = 1.0
    mask_noise: bool = True
    momentum: float = 0.5
    beta1: float = None
    beta2: float = None
    epsilon: float = None
    use_nesterov: bool = None
    epsilon_inside_sqrt: bool = None

    def validate(self, owner):
        if self.lr_granularity not in LR_GRANULARITIES:
            raise InvalidArgumentError(
                f"{owner}: lr_granularity must be one of {LR_GRANULARITIES}; received {self.lr_granularity!r}.")
        _number(self.l1_reg, "l1_reg", owner)
        _number(self.l2_reg, "l2_reg", owner)
        _number(self.mask_init, "mask_init", owner, minimum=-np.inf)
        if isinstance(self.mask_temperature, bool) or not isinstance(self.mask_temperature, (int, float)) \
                or self.mask_temperature <= 0:
            raise InvalidArgumentError(
                f"{owner}: mask_temperature must be a positive number; received {self.mask_temperature!r}.")

    def optimizer_settings(self, optimizer_name, owner):
        """The optimizer keywords that were set, checked against the optimizer's constructor."""
        factory = extension.OPTIMIZERS.get(optimizer_name)
        parameters = inspect.signature(factory).parameters.values()
        if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
            accepted = set(_OPTIMIZER_OPTIONS)  # a factory taking **kwargs receives every setting
        else:
            accepted = {parameter.name for parameter in parameters}
        settings = {}
        for key in _OPTIMIZER_OPTIONS:
            value = getattr(self, key)
            default = LowerOptions.__dataclass_fields__[key].default
            if key in accepted:
                if value is not None:
                    settings[key] = value
            elif value is not None and value != default:
                raise InvalidArgumentError(
                    f"{owner}: the inner optimizer {optimizer_name!r} does not take {key}={value!r}. Its settings are "
                    f"{sorted(accepted & set(_OPTIMIZER_OPTIONS)) or 'none'}; remove {key} or choose an optimizer "
                    f"that uses it."
                )
        return settings


def inner_gradient(dynamics, objective, state, t=None):
    """Gradient of a task-local objective w.r.t. the state (zeros where it does not depend on it).

    ``t``: the step, for the step plan's per-step replacements (see ``TaskDynamics.at_state``).

    Returns:
        ``(gradients, value)``.
    """
    if objective is dynamics.inner_objective:  # built once per state, shared with the reported values
        value = dynamics.inner_value(state, t)
    else:
        value = dynamics.at_state(objective, state, t)
    return dynamics.gradient(value, state), value


class BOMLInnerGrad:
    """Base class of the lower-level strategies.

    Subclasses define ``direction`` and ``potential``. ``BOMLOptimizer.ll_problem``
    builds the strategy; it can also be built directly.

    Args:
        inner_objective: scalar tensor ``f``, built on the task variables.
        var_list: the task variables ``y`` adapted by the dynamics.
        optimizer: a ``boml.optimizer.BOMLOpt`` or a registered optimizer name.
        T: number of inner steps (int >= 1).
        learning_rate: inner step size (default: the optimizer's).
        outer_objective: scalar tensor ``F``; required by strategies whose dynamics
            use it (BDA).
        experiment: the ``BOMLExperiment`` the objectives were built on.
        first_order: treat the direction as a constant (FOMAML).
        initial_state: the episode start of each task variable, aligned with
            ``var_list`` (a tensor or variable, e.g. the meta-parameter a MetaInit
            task variable starts from, or None for the variable's initial value).
            Networks hand it over with ``BOMLNet.initial_state``.
        share_with: another strategy of the same problem whose learned
            variables (step sizes, masks, BDA weights) this one reuses (one per task).
        scope: variable scope for the learned variables.
        shared_defaults: see ``StrategyOptions.from_options`` (default: the class's ``shared_defaults``).
        **options: the strategy's ``Options`` (see ``LowerOptions``).

    Raises:
        InvalidArgumentError: T, var_list, learning_rate or an option is invalid.
        UnknownOptionError: an option is not one of the strategy's.
    """

    #: The option record of the strategy.
    Options = LowerOptions
    #: The ``method`` values the strategy serves.
    methods = ("MetaFeat",)
    #: Upper strategies (names) this lower strategy declares it works with, in addition to
    #: those that list it in their ``inner_methods``.
    outer_methods = ()
    #: True when the dynamics are unrolled in Python (graph grows with T).
    unroll_in_python = False
    #: True when ``outer_objective`` is required.
    needs_outer_objective = False
    #: True when, as in the original, the user's task network is shown at the adapted weights
    #: after ``ll_problem`` (MetaInit).
    adapts_user_model = False
    #: Per-step step sizes and parameter replacements (``boml.lower_iter.dynamics.StepPlan``), set by MAML++.
    step_plan = None
    #: ``ll_problem`` keywords that only some lower strategies take, at their "not set" values:
    #: a strategy that does not take one accepts it at that value (see ``StrategyOptions.from_options``).
    shared_defaults = {"learn_st": False, "alpha_init": 0.0, "s": 1.0, "t": 1.0, "learn_alpha": False,
                       "learn_alpha_itr": False}

    def __init__(self, inner_objective, var_list, optimizer="SGD", T=1, learning_rate=None, outer_objective=None,
                 experiment=None, first_order=False, initial_state=None, share_with=None, scope=None,
                 shared_defaults=None, **options):
        owner = f"inner_method {type(self).__name__}"
        if not isinstance(T, int) or isinstance(T, bool) or T < 1:
            raise InvalidArgumentError(
                f"T (the number of inner steps) must be a positive integer; received {T!r}. Pass for example T=5."
            )
        var_list = list(var_list or [])
        if not var_list:
            raise InvalidArgumentError(
                "var_list is empty: the lower level has no task variables to adapt. Pass var_list=ex.model.var_list "
                "after setting ex.model = boml_ho.base_learner(...)."
            )
        if self.needs_outer_objective and outer_objective is None:
            raise InvalidArgumentError(
                f"{owner} needs the outer objective inside the lower-level dynamics; received outer_objective=None. "
                f"Pass ll_problem(..., outer_objective=<query loss tensor>)."
            )
        self.config = self.Options.from_options(
            owner, options, self.shared_defaults if shared_defaults is None else shared_defaults)
        if isinstance(optimizer, BOMLOpt):
            self.optimizer_name = getattr(optimizer, "display_name", type(optimizer).__name__)
            self.optimizer = optimizer
            learning_rate = optimizer.learning_rate if learning_rate is None else learning_rate
        else:
            self.optimizer_name = optimizer
            settings = self.config.optimizer_settings(optimizer, owner)
            self.optimizer = None
        _check_learning_rate(learning_rate)
        self.var_list = var_list
        self.T = T
        self.first_order = bool(first_order)
        self.experiment = experiment
        self.outer_objective = outer_objective
        starts = list(initial_state) if initial_state is not None else [None] * len(var_list)
        if len(starts) != len(var_list):
            raise InvalidArgumentError(
                f"initial_state must give one start per task variable ({len(var_list)}); received {len(starts)}."
            )
        self.initial_state = [v.initial_value if s is None else s for s, v in zip(starts, var_list)]
        self.inner_objective = self._regularized(inner_objective)
        if share_with is not None:
            if len(share_with.var_list) != len(var_list):
                raise InvalidArgumentError(
                    f"Every task must adapt the same number of variables; the first task had "
                    f"{len(share_with.var_list)}, this one has {len(var_list)}."
                )
            self.learned = share_with.learned
        else:
            with _in_scope(scope):
                self.learned = self.create_variables(learning_rate)
        self.learning_rate = self.learned["lr"]
        if self.optimizer is None:
            self.optimizer = make_optimizer(optimizer, self.learning_rate, **settings)

    # ----------------------------------------------------------------- owned variables
    def create_variables(self, learning_rate):
        """Creates the strategy's learned variables (called once per problem).

        Returns:
            dict with ``"lr"`` (the step size tensor or variable), ``"rates"`` (one
            per task variable), ``"masks"`` (mask logits or None) and the
            strategy's own entries.
        """
        dtype = self.var_list[0].dtype.base_dtype
        config = self.config
        if not config.learn_lr:
            if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
                lr = tf.cast(learning_rate, dtype)
                check = tf.debugging.assert_positive(
                    lr, message=f"{GRAPH_CHECK_MARKER} the learning_rate tensor given to ll_problem must be positive "
                                f"(a negative one runs gradient ascent); pass a tensor whose values are > 0.")
                with tf.control_dependencies([check]):
                    lr = tf.identity(lr, name="lr")
            else:
                lr = tf.constant(learning_rate, dtype, name="lr")
            rates = [lr] * len(self.var_list)
        elif config.lr_granularity == "scalar":
            lr = extension.get_outerparameter("lr", np.asarray(learning_rate, dtype.as_numpy_dtype))
            rates = [lr] * len(self.var_list)
        else:
            rates = []
            for index, var in enumerate(self.var_list):
                shape = var.shape.as_list() if config.lr_granularity == "element" else []
                value = np.full(shape, learning_rate, dtype=var.dtype.base_dtype.as_numpy_dtype)
                rates.append(extension.get_outerparameter(f"lr_{index}", value))
            lr = rates[0]
        masks = None
        if config.use_mask:
            masks = [extension.get_outerparameter(
                f"mask_logit_{index}",
                np.full(var.shape.as_list()[-1:], config.mask_init, var.dtype.base_dtype.as_numpy_dtype))
                for index, var in enumerate(self.var_list)]
        return {"lr": lr, "rates": rates, "masks": masks}

    def shared_settings(self):
        """The settings ``BOMLOptimizer.param_dict`` shows for this strategy (the original's entries)."""
        return {"learning_rate": self.learning_rate, "T": self.T, "experiment": self.experiment,
                "first_order": self.first_order, "learn_lr": self.config.learn_lr}

    @property
    def learning_rates(self):
        """The step size of each task variable (tensors or meta-parameters)."""
        return list(self.learned["rates"])

    @property
    def mask_logits(self):
        """The MT-net mask logits (meta-parameters), or None without ``use_mask``."""
        masks = self.learned["masks"]
        return None if masks is None else list(masks)

    def _regularized(self, objective):
        config = self.config
        if config.l2_reg:
            objective = objective + utils.get_L2Reg(self.var_list, config.l2_reg)
        if config.l1_reg:
            objective = objective + utils.get_L1Reg(self.var_list, config.l1_reg)
        return objective

    # ----------------------------------------------------------------- per task
    def task_dynamics(self, task, outer_objective=None, training=True):
        """The ``TaskDynamics`` of one task.

        Args:
            task: the ``TaskProgram``.
            outer_objective: the upper objective ``F`` (default: ``outer_objective``).
            training: True for meta-training (random masks), False for evaluation.
        """
        return TaskDynamics(self, task, outer_objective, training)

    def step_hyperparameters(self, task, training=True):
        """The task-local ``StepHyperparameters`` (step sizes, masks, coefficients)."""
        rates = [tf.cast(task.local(r), v.dtype.base_dtype) for r, v in zip(self.learned["rates"], self.var_list)]
        return StepHyperparameters(learning_rates=rates, masks=self._masks(task, training),
                                   coefficients=self.coefficients(task))

    def coefficients(self, task):
        """Strategy-specific step coefficients as task-local tensors (default: none)."""
        return {}

    def _masks(self, task, training):
        """MT-net masks ``M`` (one per task variable), or None without ``use_mask``.

        Training samples a relaxed Bernoulli mask per task, ``sigmoid((logit + logistic
        noise) / temperature)`` (no noise with ``mask_noise=False``), thresholded at 1/2
        in the forward pass with the relaxed gradient (straight-through) so the logits
        learn. Evaluation uses the deterministic mask ``logit > 0``. Units whose mask is
        0 do not adapt.

        References:
            Lee and Choi, "Gradient-Based Meta-Learning with Learned Layerwise Metric
            and Subspace", ICML 2018.
        """
        if not self.learned["masks"]:
            return None
        masks = []
        for logit, var in zip(self.learned["masks"], self.var_list):
            logit = tf.cast(task.local(logit), var.dtype.base_dtype)
            if not training:
                masks.append(tf.cast(logit > 0, logit.dtype))
                continue
            if self.config.mask_noise:
                uniform = tf.random.uniform(tf.shape(logit), 1e-6, 1 - 1e-6, dtype=logit.dtype)
                logit = logit + tf.math.log(uniform) - tf.math.log(1 - uniform)
            soft = tf.sigmoid(logit / self.config.mask_temperature)
            hard = tf.cast(soft > 0.5, soft.dtype)
            masks.append(hard + soft - tf.stop_gradient(soft))
        return masks

    # ----------------------------------------------------------------- the user's view
    def user_model(self, model):
        """The network the user continues with after ``ll_problem``.

        ``model`` itself, or (``adapts_user_model``) an ``AdaptedModel`` whose forward
        passes use ``theta_T`` built on the support placeholders, as in the original.
        """
        return AdaptedModel(model, self) if self.adapts_user_model and model is not None else model

    def adapted_on_placeholders(self):
        """``theta_T`` as graph tensors of the meta-parameters and the (per-task) support placeholders."""
        if getattr(self, "_adapted", None) is None:
            from boml.task import TaskProgram

            with tf.name_scope("adapted_weights"):
                dynamics = self.task_dynamics(TaskProgram((), [], self.var_list), training=False)
                self._adapted = dynamics.unroll().final
        return self._adapted

    def on_task_variables(self, tensors):
        """``tensors`` built on the adapted weights (``user_model``) re-expressed on the task variables."""
        adapted = getattr(self, "_adapted", None)
        if adapted is None:
            return tensors
        return pull_back(tensors, list(zip(adapted, self.var_list)))

    def adapted_values(self, tensors, meta_param, T=None):
        """``tensors`` (built on the task variables) at the adapted state of every task, without hypergradients.

        Args:
            tensors: a tensor or list of tensors.
            meta_param: the meta-parameters the tasks see.
            T: number of adaptation steps (default: the training T).

        Returns:
            Matching tensors with a leading task axis.

        Raises:
            InvalidArgumentError: ``T`` is not a positive integer.
        """
        from boml.task import map_over_tasks

        if T is not None and (not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 1):
            raise InvalidArgumentError(
                f"adapted(T=...) must be a positive number of adaptation steps; received T={T!r}. Pass T >= 1, "
                f"or T=None for the training T={self.T}."
            )
        single = not isinstance(tensors, (list, tuple))
        items = self.on_task_variables([tensors] if single else list(tensors))

        def task_fn(task):
            dynamics = self.task_dynamics(task, training=False)
            final = dynamics.unroll(T=T, differentiable=False).final
            values = dynamics.at_state(dynamics.local(items), final, T or self.T, query=True)
            return [tf.stop_gradient(v) for v in values]

        with tf.name_scope("adapted"):
            outputs = map_over_tasks(self.experiment, meta_param, self.var_list, task_fn,
                                     [t.dtype.base_dtype for t in items])
        return outputs[0] if single else outputs

    # ----------------------------------------------------------------- the direction
    def direction(self, dynamics, t, state, hyperparameters):
        """The direction ``d_t`` at 1-based step ``t`` (a list aligned with the state)."""
        raise NotImplementedError

    def potential(self, dynamics, t, state, hyperparameters):
        """A scalar whose gradient w.r.t. the state is ``direction`` (used by DARTS)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- original names
    @classmethod
    def compute_gradients(cls, boml_opt, loss_inner, loss_outer=None, param_dict=None, var_list=None, **inner_kargs):
        """Builds the strategy object (the original's static constructor)."""
        param_dict = dict(param_dict or {})
        return cls(loss_inner, var_list, boml_opt, param_dict.get("T", 1), outer_objective=loss_outer,
                   experiment=param_dict.get("experiment"), first_order=param_dict.get("first_order", False),
                   **inner_kargs)

    @property
    def state(self):
        """The task variables adapted by the dynamics."""
        return list(self.var_list)

    @property
    def dynamics(self):
        """The original's ``OrderedDict`` ``state variable -> value after one inner step`` (first step).

        Built on the variables themselves (not per task), for inspection and for the
        original's stateful evaluation loop; boml's training never runs it.
        """
        if getattr(self, "_dynamics_dict", None) is None:
            from boml.task import TaskProgram

            with tf.name_scope("dynamics"):
                task = TaskProgram((), [], self.var_list)
                dynamics = self.task_dynamics(task, training=False)
                proxies = task.state_proxies
                new_state, _ = dynamics.step(1, proxies, dynamics.initial_slots(proxies))
                self._state_reads = [tf.identity(v) for v in self.var_list]
                values = dynamics.at_state(new_state, self._state_reads)
            self._dynamics_dict = collections.OrderedDict(zip(self.var_list, values))
        return self._dynamics_dict

    def _stateful_step(self):
        """The original's stateful inner step, built once: ``(update op, reset op)``.

        The optimizer slots and the step counter live in variables (created here,
        zero-initialized) so that, as in the original, consecutive ``iteration`` runs
        continue the Momentum/Adam recursions until ``initialization`` resets them.
        """
        if getattr(self, "_stateful", None) is None:
            from boml.task import TaskProgram

            with tf.name_scope("stateful_step"):
                with tf.init_scope():
                    zeros = self.optimizer.init_slots([tf.zeros(v.shape, v.dtype.base_dtype) for v in self.var_list])
                    slots = [tf.Variable(z, trainable=False, name="slot") for z in zeros]
                    counter = tf.Variable(0, dtype=tf.int32, trainable=False, name="step")
                task = TaskProgram((), [], self.var_list)
                dynamics = self.task_dynamics(task, training=False)
                proxies = task.state_proxies
                new_state, new_slots = dynamics.step(counter.read_value() + 1, proxies, [s.read_value() for s in slots])
                values = dynamics.at_state(new_state + new_slots, [tf.identity(v) for v in self.var_list])
                with tf.control_dependencies(values):
                    update = tf.group(*[tf.assign(var, value) for var, value in zip(self.var_list + slots, values)],
                                      tf.assign_add(counter, 1), name="apply_updates")
                reset = tf.group(*[v.assign(start) for v, start in zip(self.var_list, self.initial_state)],
                                 *[s.assign(z) for s, z in zip(slots, zeros)], counter.assign(0),
                                 name="initialization")
            self._stateful = (update, reset)
        return self._stateful

    @property
    def apply_updates(self):
        """Op performing one stateful inner step of the task variables (the original's update op)."""
        return self._stateful_step()[0]

    @property
    def iteration(self):
        """One inner step, then the values of the task variables (the original's ``iteration``).

        ``session.run(strategy.iteration)`` performs the step (the strategy's direction,
        mask and inner optimizer, its slots kept in variables between runs) and returns
        the new values; run ``initialization`` first to start an episode.
        """
        if getattr(self, "_iteration", None) is None:
            with tf.control_dependencies([self.apply_updates]):
                self._iteration = [v.read_value() for v in self.var_list]
        return self._iteration

    @property
    def initialization(self):
        """Op resetting the task variables to their episode start and the optimizer slots to zero."""
        return self._stateful_step()[1]

    def state_feed_dict(self, values):
        """A feed dict evaluating ``dynamics`` at the given state values (the original fed the state variables).

        Args:
            values: one array per task variable.
        """
        values = list(values)
        if len(values) != len(self.var_list):
            raise InvalidArgumentError(
                f"state_feed_dict needs one value per task variable ({len(self.var_list)}); received {len(values)}."
            )
        self.dynamics  # noqa: B018 - builds the state reads that the feed replaces
        return dict(zip(self._state_reads, values))


def _check_learning_rate(learning_rate):
    if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
        return
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.floating)):
        raise InvalidArgumentError(f"learning_rate must be a positive number; received {learning_rate!r}.")
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise InvalidArgumentError(
            f"learning_rate must be a positive finite number; received {learning_rate!r}. Try 0.1 or 0.4."
        )


class _in_scope:  # noqa: N801 - used as a context manager
    """Enters ``scope`` (a variable scope) for variables and op names, or nothing when None."""

    def __init__(self, scope):
        self._scope = scope
        self._contexts = []

    def __enter__(self):
        if self._scope is not None:
            self._contexts = [tf.variable_scope(self._scope, auxiliary_name_scope=False),
                              tf.name_scope(self._scope.original_name_scope)]
            for context in self._contexts:
                context.__enter__()
        return self

    def __exit__(self, *exc):
        for context in reversed(self._contexts):
            context.__exit__(*exc)
        return False


@extension.register_lower_iter("Trad")
class BOMLInnerGradTrad(BOMLInnerGrad):
    """Gradient-descent dynamics on the inner objective (RHG, TRHG, HOAG, DARTS).

    Update (SGD): ``y_t = y_{t-1} - eta * grad_y f(x, y_{t-1})``; Momentum and
    Adam apply their own recursions to the same gradient.

    References:
        Franceschi et al., "Forward and Reverse Gradient-Based Hyperparameter
        Optimization", ICML 2017.
    """

    def direction(self, dynamics, t, state, hyperparameters):
        grads, _ = inner_gradient(dynamics, dynamics.inner_objective, state, t)
        return grads

    def potential(self, dynamics, t, state, hyperparameters):
        return dynamics.at_state(dynamics.inner_objective, state)
