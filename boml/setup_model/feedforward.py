"""``BOMLNetFeedForward``: the linear task head of the MetaFeat methods."""
import logging
from collections import OrderedDict

import tensorflow.compat.v1 as tf

from boml.errors import InvalidArgumentError, ShapeError
from boml.helpers import deprecated_keyword
from boml.setup_model import network_utils
from boml.setup_model.network import BOMLNet

logger = logging.getLogger(__name__)


class BOMLNetFeedForward(BOMLNet):
    """A linear layer ``out = activation(_input @ fc_weight + fc_bias)`` with task variables.

    It is the base learner of the MetaFeat (hyper-representation) methods: the
    inner loop adapts ``fc_weight [feat_dim, N]`` and ``fc_bias [N]`` on top of
    the meta-learned features. Both are task variables (``trainable=False``, in
    ``var_collections`` and ``GLOBAL_VARIABLES``) and form ``var_list``; they
    restart every episode from their initial value (zeros by default).

    Args:
        _input: features ``[batch, feat_dim]``; inputs of higher rank with static
            non-batch dimensions are flattened first.
        dims: number of outputs N (an int, or a sequence ending with it).
        task_parameter: dict ``{"fc_weight": ..., "fc_bias": ...}`` of tensors to use
            instead of creating variables (as ``re_forward`` does), or None.
        name: scope name.
        activation: optional nonlinearity on the output (default None: linear, as
            the original head).
        var_collections: collections of the task variables (default ``MODEL_VARIABLES``).
        output_weight_initializer: initializer of ``fc_weight``: a class such as
            ``tf.zeros_initializer`` or an instance, or None for the default
            :class:`~boml.setup_model.network_utils.GlorotUniform` (Xavier).
        data_type: ``tf.float32`` or ``tf.float64``; the input is cast to it. ``datatype`` is a deprecated
            spelling (DeprecationWarning).
        reuse: False, True or ``tf.AUTO_REUSE`` (see :class:`BOMLNet`).

    Raises:
        ShapeError: the input has rank < 2 or unknown feature dimensions.
        InvalidArgumentError: bad ``dims``, ``data_type`` or ``activation``.

    Reference:
        Franceschi et al., "Bilevel Programming for Hyperparameter Optimization
        and Meta-Learning", ICML 2018.
    """

    @deprecated_keyword("datatype", "data_type")
    def __init__(self, _input, dims, task_parameter=None, name="BOMLNetFeedForward", activation=None,
                 var_collections=None, output_weight_initializer=network_utils.GlorotUniform, data_type=tf.float32,
                 reuse=False):
        what = type(self).__name__
        self.dims, self.dim_output = network_utils.check_dim_output(what, dims)
        try:
            self.data_type = tf.as_dtype(data_type).base_dtype
        except TypeError:
            self.data_type = None
        if self.data_type is None or not self.data_type.is_floating:
            raise InvalidArgumentError(
                f"{what}: data_type must be a floating-point dtype (tf.float32 or tf.float64); received {data_type!r}."
            )
        self.datatype = self.data_type
        if activation is not None and not callable(activation):
            raise InvalidArgumentError(
                f"{what}: activation must be a callable or None; received {activation!r}."
            )
        self.activation = activation
        self.output_weight_initializer = network_utils.as_initializer(
            output_weight_initializer, network_utils.GlorotUniform, "output_weight_initializer")
        self.feature_dim = self._check_input(_input)
        self._config = dict(activation=activation, var_collections=var_collections,
                            output_weight_initializer=output_weight_initializer, data_type=data_type)
        super().__init__(_input, name=name, task_parameter=task_parameter, var_collections=var_collections,
                         reuse=reuse)
        if self.var_list:
            logger.debug("%s MODEL CREATED (scope %s)", self.name, self.scope_name)

    @staticmethod
    def _check_input(_input):
        shape = _input.shape
        dims = shape.as_list()[1:] if shape.ndims is not None else None
        if shape.ndims is None or shape.ndims < 2 or any(d is None for d in dims):
            raise ShapeError(
                f"BOMLNetFeedForward expects features [batch, feat_dim] with a static feat_dim; received a tensor "
                f"of shape {shape}. Flatten the features (for example meta_learner.out) or give them a static shape."
            )
        feature_dim = 1
        for d in dims:
            feature_dim *= int(d)
        return feature_dim

    def _creates_variables(self):
        return self.task_parameter is None

    def _expected_shapes(self):
        return OrderedDict([("fc_weight", [self.feature_dim, self.dim_output]), ("fc_bias", [self.dim_output])])

    def create_task_parameters(self):
        collections = list(dict.fromkeys(list(self.var_collections) + [tf.GraphKeys.GLOBAL_VARIABLES]))
        params = OrderedDict()
        params["fc_weight"] = tf.get_variable(
            "fc_weight", shape=[self.feature_dim, self.dim_output], dtype=self.data_type,
            initializer=self.output_weight_initializer, trainable=False, collections=collections)
        params["fc_bias"] = tf.get_variable(
            "fc_bias", shape=[self.dim_output], dtype=self.data_type, initializer=tf.zeros_initializer(),
            trainable=False, collections=collections)
        return params

    def _check_task_parameter(self, task_parameter):
        network_utils.check_param_dict(task_parameter, self._expected_shapes(), "task_parameter",
                                       "Pass {'fc_weight': [feat_dim, N] tensor, 'fc_bias': [N] tensor}.",
                                       self.data_type)

    def _forward(self):
        x = network_utils.cast_input(self.layers[0], self.data_type)
        if x.shape.ndims > 2:
            x = network_utils.flatten(x)
        out = tf.add(tf.matmul(x, self.task_parameter["fc_weight"]), self.task_parameter["fc_bias"], name="logits")
        if self.activation is not None:
            out = self.activation(out)
        self.layers.append(out)

    def _rebuild(self, new_input, task_parameter):
        return BOMLNetFeedForward(new_input, self.dims, task_parameter=task_parameter, name=self.name,
                                  **self._config)
