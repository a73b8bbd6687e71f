"""``BOMLNet``: the base class of every boml network.

A network owns three ordered parameter dictionaries:

* ``outer_param_dict``: meta-parameters whose copies the inner loop adapts
  (for example the MAML initialization ``conv0 ... w4, bias4``);
* ``model_param_dict``: meta-only parameters, never adapted in the inner loop
  (T-layers, warp layers, batch-norm offset and scale);
* ``task_parameter``: what the forward pass actually uses for the adapted
  weights (variables or tensors).

A network is plain graph code that reads its variables directly, so boml's
engine can re-evaluate any tensor built on it with other inputs or parameter
values. :meth:`BOMLNet.re_forward` connects the same parameters to a new
input (or new task parameters) without creating any variable, in the spirit
of Sonnet's connect-many-times modules.
"""
import logging
from collections import OrderedDict

import tensorflow as _tf2
import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError
from boml.setup_model import network_utils

logger = logging.getLogger(__name__)


def _is_variable(obj):
    return isinstance(obj, _tf2.Variable)


class BOMLNet:
    """Base object for boml networks.

    Subclasses implement :meth:`_forward` (which appends layers with
    ``self + tensor``) and :meth:`_rebuild` (used by :meth:`re_forward`), and may
    override the creation hooks :meth:`create_outer_parameters`,
    :meth:`create_model_parameters` and :meth:`create_task_parameters`.

    Construction order, inside the network's own variable scope:
    1. if ``outer_param_dict`` is empty, :meth:`create_outer_parameters` and then
       (when ``model_param_dict`` is empty too) :meth:`create_model_parameters`
       are called, so the ``METAPARAMETERS`` collection lists the outer
       parameters first, then the model parameters;
    2. if ``task_parameter`` is None, :meth:`create_task_parameters` fills it;
    3. :meth:`_forward` builds the graph.

    When a network creates variables its scope is made unique (``name``,
    ``name_1``, ...), so two networks built in one graph never share a variable
    unless asked to (``reuse=True`` or ``tf.AUTO_REUSE`` opens ``name`` itself).

    Args:
        _input: the input tensor (``layers[0]``).
        name: scope name (default: the class name).
        outer_param_dict: meta-parameters to share, or None to create them.
        model_param_dict: meta-only parameters to share, or None.
        task_parameter: parameters (variables or tensors) for the forward pass,
            or None to create/choose them.
        var_collections: collections (besides ``GLOBAL_VARIABLES``) for the task
            variables this network creates (default ``MODEL_VARIABLES``).
        reuse: False (fresh unique scope), True or ``tf.AUTO_REUSE`` (variables
            looked up in scope ``name``).
    """

    #: How to build a network whose outer/model dicts match (shown when they do not).
    PARAMETER_HINT = "Build it with the dicts of a network of the same configuration."
    #: How to build a matching ``task_parameter`` dict (shown when it does not match).
    TASK_PARAMETER_HINT = "task_parameter needs one tensor per outer parameter, with the outer parameter's shape."

    def __init__(self, _input, name=None, outer_param_dict=None, model_param_dict=None, task_parameter=None,
                 var_collections=None, reuse=False):
        if reuse not in (False, True, tf.AUTO_REUSE, None):
            raise InvalidArgumentError(
                f"reuse must be False, True or tf.AUTO_REUSE; received {reuse!r}."
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidArgumentError(f"name must be a non-empty string or None; received {name!r}.")
        self._name = name or type(self).__name__
        self.layers = [_input]
        self.reuse = bool(reuse) if reuse is not tf.AUTO_REUSE else reuse
        collections = network_utils.as_list(var_collections) or [tf.GraphKeys.MODEL_VARIABLES]
        self.var_collections = collections
        self._outer_param_dict = network_utils.ordered(outer_param_dict)
        self._model_param_dict = network_utils.ordered(model_param_dict)
        self._task_parameter = OrderedDict(task_parameter) if task_parameter else None
        self._created_outer = False
        self._initializer_op = None
        self._episode_starts = {}
        self._scope_name = None

        with self._open_scope():
            self._scope_name = (tf.get_variable_scope().name if self._creates_variables()
                                else tf.get_default_graph().get_name_scope())
            if not self._outer_param_dict:
                created = self.create_outer_parameters()
                if created:
                    self._outer_param_dict.update(created)
                self._created_outer = True
                if not self._model_param_dict:
                    created = self.create_model_parameters()
                    if created:
                        self._model_param_dict.update(created)
            self._check_parameters()
            if self._task_parameter is None:
                self._task_parameter = OrderedDict(self.create_task_parameters())
            self._check_task_parameter(self._task_parameter)
            self._forward()

    # ------------------------------------------------------------------------------ scope
    def _creates_variables(self):
        """Whether this construction creates variables (decides the kind of scope opened)."""
        return not self._outer_param_dict or self._task_parameter is None

    def _open_scope(self):
        if not self._creates_variables():
            return tf.name_scope(self._name)
        if self.reuse:
            return tf.variable_scope(self._name, reuse=self.reuse)
        return tf.variable_scope(None, default_name=self._name)

    # ------------------------------------------------------------------------------ hooks
    def create_outer_parameters(self):
        """Creates the meta-parameters adapted by the inner loop; returns an OrderedDict (default: none)."""
        return OrderedDict()

    def create_model_parameters(self):
        """Creates the meta-only parameters; returns an OrderedDict (default: none)."""
        return OrderedDict()

    def create_task_parameters(self):
        """Returns the parameters the forward pass uses when none are given (default: the outer ones)."""
        return OrderedDict(self._outer_param_dict)

    def copy_outer_parameters(self):
        """Task variables for a MetaInit base learner: one copy per outer parameter.

        Each copy starts every episode from its outer parameter (handed to the
        lower strategy by ``initial_state_of``); a meta-learner (which created the
        outer parameters) uses them directly instead.
        """
        if self._created_outer:
            return OrderedDict(self.outer_param_dict)
        collections = list(dict.fromkeys(list(self.var_collections) + [tf.GraphKeys.GLOBAL_VARIABLES]))
        copies = OrderedDict()
        for key, outer in self.outer_param_dict.items():
            copy = tf.get_variable(key, initializer=outer.initial_value, dtype=outer.dtype.base_dtype,
                                   trainable=False, collections=collections)
            self._episode_starts[copy.ref()] = outer
            copies[key] = copy
        return copies

    def initial_state_of(self, variable):
        """The episode start of a task variable of this network (its outer parameter), or None.

        ``BOMLOptimizer.ll_problem`` hands it to the lower strategy explicitly.
        """
        return self._episode_starts.get(variable.ref())

    @property
    def initial_state(self):
        """The episode start of every variable of ``var_list`` (None: the variable's initial value)."""
        return [self.initial_state_of(v) for v in self.var_list]

    def _outer_shapes(self):
        """``{key: shape}`` of the outer parameters, or None when a subclass does not check them."""
        return None

    def _model_shapes(self):
        """``{key: shape}`` of the model parameters, or None when a subclass does not check them."""
        return None

    def _check_parameters(self):
        """Validates the outer and model parameter dicts against ``_outer_shapes``/``_model_shapes``."""
        for what, params, shapes in (("outer_param_dict", self.outer_param_dict, self._outer_shapes()),
                                     ("model_param_dict", self.model_param_dict, self._model_shapes())):
            if shapes is not None:
                network_utils.check_param_dict(params, shapes, what, self.PARAMETER_HINT, self.datatype)

    def _check_task_parameter(self, task_parameter):
        """Validates a task-parameter dict against ``_outer_shapes``."""
        shapes = self._outer_shapes()
        if shapes is not None:
            network_utils.check_param_dict(task_parameter, shapes, "task_parameter", self.TASK_PARAMETER_HINT,
                                           self.datatype)

    def _forward(self):
        """Builds the forward graph from ``self.layers[0]``, appending layers with ``self + tensor``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement _forward(); BOMLNet is an abstract base class."
        )

    def _rebuild(self, new_input, task_parameter):
        """Returns a new network of the same kind on ``new_input`` using ``task_parameter``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement _rebuild(new_input, task_parameter) to support re_forward()."
        )

    # ------------------------------------------------------------------------------ public API
    def re_forward(self, new_input=None, task_parameter=None):
        """Connects the same parameters to ``new_input`` and returns the new network.

        No variable is created: the returned object shares ``outer_param_dict``,
        ``model_param_dict`` and (unless replaced) ``task_parameter`` with this one.

        Args:
            new_input: the new input (default: this network's input).
            task_parameter: optional dict ``name -> tensor`` replacing some or all
                task parameters (for example the adapted weights ``theta_t``).

        Returns:
            A new network object of the same class.

        Raises:
            InvalidArgumentError: ``task_parameter`` has names this network does not use.
        """
        params = OrderedDict(self._task_parameter)
        if task_parameter:
            if not isinstance(task_parameter, dict):
                raise InvalidArgumentError(
                    f"task_parameter must be a dict name -> tensor; received {type(task_parameter).__name__}."
                )
            unknown = [k for k in task_parameter if k not in params]
            if unknown:
                raise InvalidArgumentError(
                    f"re_forward received task parameters {unknown} that {self.name!r} does not use; "
                    f"its task parameters are {list(params)}."
                )
            params.update(task_parameter)
        net = self._rebuild(self.layers[0] if new_input is None else new_input, params)
        net._episode_starts = dict(self._episode_starts)  # pylint: disable=protected-access
        return net

    @property
    def name(self):
        """The name given to the network."""
        return self._name

    @property
    def scope_name(self):
        """The (unique) scope the network was built in."""
        return self._scope_name

    @property
    def outer_param_dict(self):
        """OrderedDict ``name -> tf.Variable`` of the meta-parameters adapted by the inner loop."""
        return self._outer_param_dict

    @property
    def model_param_dict(self):
        """OrderedDict ``name -> tf.Variable`` of the meta-only parameters (never adapted)."""
        return self._model_param_dict

    @property
    def task_parameter(self):
        """OrderedDict ``name -> variable or tensor`` used by the forward pass."""
        return self._task_parameter

    @property
    def meta_parameters(self):
        """Outer parameters followed by model parameters."""
        return list(self._outer_param_dict.values()) + list(self._model_param_dict.values())

    @property
    def var_list(self):
        """The task-parameter variables this network adapts (its inner-loop state).

        These are the variables of ``task_parameter`` that are not meta-parameters:
        empty for a meta-learner, the task copies for a MetaInit base learner,
        ``[fc_weight, fc_bias]`` for the FeedForward head.
        """
        meta = {v.ref() for v in self.meta_parameters if _is_variable(v)}
        return [v for v in self._task_parameter.values() if _is_variable(v) and v.ref() not in meta]

    @property
    def out(self):
        """The last layer."""
        return self.layers[-1]

    def __getitem__(self, item):
        return self.layers[item]

    def __len__(self):
        return len(self.layers)

    def __add__(self, other):
        """Appends ``other`` as a new layer and returns the network."""
        self.layers.append(other)
        return self

    def filter_vars(self, suffix):
        """This network's variables (meta and task) whose name ends with ``suffix``."""
        seen, result = set(), []
        for v in self.meta_parameters + self.var_list:
            if _is_variable(v) and v.ref() not in seen and v.name.split(":")[0].endswith(suffix):
                seen.add(v.ref())
                result.append(v)
        return result

    def initialize(self, session=None):
        """Resets the task variables (``var_list``) to their episode start.

        Each variable takes the value of ``initial_state_of`` (the current
        meta-parameters for a MetaInit base learner) or else its own initial value. The
        meta-parameters must already be initialized.

        Raises:
            InvalidArgumentError: no session is given and there is no default one.
        """
        session = session or tf.get_default_session()
        if session is None:
            raise InvalidArgumentError(
                "initialize() needs a session: pass session=... or call it inside `with session.as_default():`."
            )
        if self._initializer_op is None:
            with tf.name_scope(f"{self._name}_initialize"):
                self._initializer_op = tf.group(
                    *[v.assign(self.initial_state_of(v) if self.initial_state_of(v) is not None else v.initial_value)
                      for v in self.var_list], name="initialize")
        session.run(self._initializer_op)

    def __repr__(self):
        return (f"<{type(self).__name__} {self.scope_name or self.name!r} out={self.out.shape} "
                f"outer={list(self._outer_param_dict)} model={list(self._model_param_dict)}>")
