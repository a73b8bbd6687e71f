"""MetaFeat V1: a 4-block convolutional hyper-representation.

The meta-learner is a feature extractor whose weights are meta-parameters;
the task-specific part is a separate linear head
(:class:`boml.setup_model.BOMLNetFeedForward`) trained in the inner loop.
"""
import logging
from collections import OrderedDict

import tensorflow.compat.v1 as tf

from boml.helpers import deprecated_keyword
from boml.setup_model import checks, network_utils
from boml.setup_model.meta_init_v1 import _factory_kwargs
from boml.setup_model.network import BOMLNet

logger = logging.getLogger(__name__)


class BOMLNetMetaFeatV1(BOMLNet):
    """Conv-4 feature extractor whose weights are meta-parameters (hyper-representation).

    Architecture, for each block ``i`` of ``dim_hidden``: ``conv{i}`` (no bias,
    batch norm follows; stride 2 SAME, or stride 1 SAME when ``max_pool``) ->
    optional T-layer (1x1 ``conv{i}_z``, identity at start) or warp layer
    (``kernel x kernel`` ``conv{i}_z`` + ``bias{i}_z``) -> batch norm (offset
    ``bn{i}_offset``, scale ``bn{i}_scale``) -> ``activation`` -> 2x2 max pool
    (``max_pool`` only). Output: the last block flattened (Omniglot 28x28:
    2*2*64 = 256 features; Mini-ImageNet 84x84 with 32 filters and max pooling:
    5*5*32 = 800), except with ``outer_method="Implicit"`` where it is globally
    average pooled (64 features) unless ``max_pool``, as in the original BOML.

    Parameters: ``outer_param_dict`` holds ``conv0 ... conv{n-1}``;
    ``model_param_dict`` holds, in layer order, the T/warp parameters and the
    batch-norm offset and scale. All are meta-parameters created with
    :func:`boml.extension.get_outerparameter` (outer ones first). There are no
    task parameters: ``var_list`` is empty and ``task_parameter`` is the outer
    dict (``re_forward`` may replace entries of it with tensors).

    Args:
        _input: NHWC image batch.
        name: scope name.
        outer_param_dict: conv weights to share, or None to create them.
        model_param_dict: meta-only parameters to share, or None.
        use_t: insert T-layers (Lee & Choi 2018).
        use_warp: insert warp layers (Flennerhag et al. 2020).
        outer_method: outer strategy name; ``"Implicit"`` selects the pooled output.
        activation: nonlinearity after normalization (None for linear).
        var_collections: extra collections for the meta-parameters.
        conv_initializer: initializer of the conv and warp kernels (default Glorot uniform).
        norm: ``"batch_norm"`` or None.
        data_type: ``tf.float32`` or ``tf.float64``; the input is cast to it. ``datatype`` is a deprecated
            spelling (DeprecationWarning).
        channels: input channels (default: the input's last dimension).
        dim_hidden: filters of each block.
        kernel: conv kernel size.
        max_pool: stride-1 convs followed by 2x2 max pooling.
        reuse: False, True or ``tf.AUTO_REUSE`` (see :class:`BOMLNet`).
        dim_output: accepted for compatibility with the meta_learner call; unused.
        task_parameter: optional dict replacing conv weights with tensors.
        output_weight_initializer: accepted for compatibility; unused (no head).

    Raises:
        ShapeError: the input is not rank 4, has an unknown channel count, or has
            unknown height/width while the output is flattened.
        InvalidArgumentError: bad ``dim_hidden``, ``kernel``, ``norm``,
            ``data_type``, or ``use_t`` together with ``use_warp``.

    Reference:
        Franceschi et al., "Bilevel Programming for Hyperparameter Optimization
        and Meta-Learning", ICML 2018.
    """

    PARAMETER_HINT = ("Share the dicts of a MetaFeat network built with the same dim_hidden, kernel, channels, "
                      "use_t, use_warp and norm (outer_param_dict=net.outer_param_dict, "
                      "model_param_dict=net.model_param_dict).")
    TASK_PARAMETER_HINT = "task_parameter needs one tensor per conv weight, with its shape."

    @deprecated_keyword("datatype", "data_type")
    def __init__(self, _input, name="BOMLNetMetaFeatV1", outer_param_dict=None, model_param_dict=None, use_t=False,
                 use_warp=False, outer_method="Reverse", activation=tf.nn.relu, var_collections=None,
                 conv_initializer=None, norm="batch_norm", data_type=tf.float32, channels=None,
                 dim_hidden=(64, 64, 64, 64), kernel=3, max_pool=False, reuse=False, dim_output=None,
                 task_parameter=None, output_weight_initializer=None):
        what = type(self).__name__
        checks.configure_conv4(self, _input, what, dim_hidden, kernel, use_t, use_warp, data_type, activation, norm,
                               channels, max_pool, outer_method, conv_initializer)
        self.dim_output = dim_output
        self.flatten = not (outer_method == "Implicit" and not self.max_pool)
        self.output_weight_initializer = output_weight_initializer
        self.meta_collections = [c for c in network_utils.as_list(var_collections)
                                 if c not in (tf.GraphKeys.GLOBAL_VARIABLES,)]
        self._config = dict(
            use_t=use_t, use_warp=use_warp, outer_method=outer_method, activation=activation,
            var_collections=var_collections, conv_initializer=conv_initializer, norm=norm, data_type=data_type,
            channels=self.channels, dim_hidden=tuple(self.dim_hidden), kernel=kernel, max_pool=max_pool,
            dim_output=dim_output, output_weight_initializer=output_weight_initializer)
        if self.flatten:
            self._check_flattenable(_input)
        super().__init__(_input, name=name, outer_param_dict=outer_param_dict, model_param_dict=model_param_dict,
                         task_parameter=task_parameter, var_collections=None, reuse=reuse)
        if self._created_outer:
            logger.debug("%s MODEL CREATED (scope %s)", self.name, self.scope_name)

    def _check_flattenable(self, _input):
        checks.conv4_output_size(
            self, _input, "flattens its last block",
            "Give the placeholder a static shape such as [None, 28, 28, 1], or use outer_method='Implicit' "
            "(global average pooling) without max_pool.")

    def _creates_variables(self):
        return not self.outer_param_dict

    # ----------------------------------------------------------------------------- shapes
    def _outer_shapes(self):
        shapes, c_in = OrderedDict(), self.channels
        for i, d in enumerate(self.dim_hidden):
            shapes[f"conv{i}"] = [self.kernel, self.kernel, c_in, d]
            c_in = d
        return shapes

    def _model_shapes(self):
        return network_utils.block_model_shapes(self)

    # ----------------------------------------------------------------------------- creation
    def create_outer_parameters(self):
        return OrderedDict((f"conv{i}", network_utils.get_conv_weight(self, i, self.conv_initializer))
                           for i in range(len(self.dim_hidden)))

    def create_model_parameters(self):
        return network_utils.create_block_model_parameters(self, self.meta_collections)

    # ----------------------------------------------------------------------------- graph
    def _forward(self):
        task, model = self.task_parameter, self.model_param_dict
        x = network_utils.cast_input(self.layers[0], self.datatype)
        for i in range(len(self.dim_hidden)):
            offset, scale = model.get(f"bn{i}_offset"), model.get(f"bn{i}_scale")
            with tf.name_scope(f"block{i}"):
                if self.use_t:
                    x = network_utils.conv_block_t(self, task[f"conv{i}"], None, model[f"conv{i}_z"], offset, scale,
                                                   inputs=x)
                elif self.use_warp:
                    x = network_utils.conv_block_warp(self, task[f"conv{i}"], None, model[f"conv{i}_z"],
                                                      model[f"bias{i}_z"], offset, scale, inputs=x)
                else:
                    x = network_utils.conv_block(self, task[f"conv{i}"], None, offset, scale, inputs=x)
            self.layers.append(x)
        if self.flatten:
            self.layers.append(network_utils.flatten(self.out, name="representation"))
        else:
            self.layers.append(tf.reduce_mean(self.out, [1, 2], name="representation"))

    def _rebuild(self, new_input, task_parameter):
        return BOMLNetMetaFeatV1(new_input, name=self.name, outer_param_dict=self.outer_param_dict,
                                 model_param_dict=self.model_param_dict, task_parameter=task_parameter,
                                 **self._config)


def BOMLNetOmniglotMetaFeatV1(_input, name="BOMLNetOmniglotMetaFeatV1", **kwargs):  # noqa: N802
    """MetaFeat Conv-4 for Omniglot: 1 channel, 4 x 64 filters, stride-2 convs.

    A 28x28 input gives 2*2*64 = 256 features (64 with ``outer_method="Implicit"``).
    Other keywords (``dim_output`` is accepted and ignored) go to :class:`BOMLNetMetaFeatV1`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=1, dim_hidden=(64, 64, 64, 64), max_pool=False))
    return BOMLNetMetaFeatV1(_input, name=name, **kwargs)


def BOMLNetMiniMetaFeatV1(_input, name="BOMLNetMiniMetaFeatV1", **kwargs):  # noqa: N802
    """MetaFeat Conv-4 for Mini-ImageNet: 3 channels, 4 x 32 filters, stride-1 convs and 2x2 max pooling.

    An 84x84 input gives 5*5*32 = 800 features. Other keywords go to :class:`BOMLNetMetaFeatV1`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=3, dim_hidden=(32, 32, 32, 32), max_pool=True))
    return BOMLNetMetaFeatV1(_input, name=name, **kwargs)
