"""MetaFeat V2: a residual hyper-representation (feature extractor of meta-parameters).

The residual layout of the original BOML ``*MetaFeatV2`` networks
(``docs/ORIGINAL_BOML.md`` section 5.5), written without ``tf.contrib`` and with
its defect fixed: the skip convolutions (and their biases) and the batch-norm
offsets and scales are meta-parameters like the other weights, so all of them
are learned (the original left them out of the meta-parameters, so they kept
their initial values forever). The task-specific part is the linear head
:class:`boml.setup_model.BOMLNetFeedForward` adapted in the inner loop.
"""
import logging

import tensorflow.compat.v1 as tf

from boml.helpers import deprecated_keyword
from boml import extension
from boml.setup_model import network_utils
from boml.setup_model.meta_init_v1 import _factory_kwargs
from boml.setup_model.meta_init_v2 import BOMLNetResidualV2, leaky_relu_01

logger = logging.getLogger(__name__)


class BOMLNetMetaFeatV2(BOMLNetResidualV2):
    """Residual feature extractor whose weights are all meta-parameters (hyper-representation).

    Architecture (see :class:`boml.setup_model.meta_init_v2.BOMLNetResidualV2`):
    ``len(dim_resnet)`` residual blocks, each the sum of a 1x1 skip convolution
    with bias (``res{i}_id``, ``res{i}_id_bias``) and ``convs_per_block`` units
    [``kernel x kernel`` conv ``res{i}_conv{j}`` -> batch norm -> leaky ReLU
    0.1], then 2x2 max pooling (SAME); head: 1x1 conv (``head_dims[0]``
    filters) + bias -> ReLU -> average pool -> 1x1 conv (``head_dims[1]``) +
    bias -> ReLU -> flatten. The output is the ``[batch, head_dims[1]]``
    representation (512 with the defaults; ``head_dims[1] * h * w`` if the
    pooled map is ``h x w``). MiniImageNet 84x84: 84 -> 42 -> 21 -> 11 -> 6,
    pooled 6x6; Omniglot 28x28: 28 -> 14 -> 7, globally pooled.

    Parameters, all meta-parameters created with
    :func:`boml.extension.get_outerparameter` (outer ones first):
    * ``outer_param_dict``: in layer order ``res{i}_id, res{i}_id_bias,
      res{i}_conv{j}`` (``res{i}_bias{j}`` with ``norm=None``), ``head_conv1,
      head_bias1, head_conv2, head_bias2``;
    * ``model_param_dict``: ``res{i}_bn{j}_offset`` and ``res{i}_bn{j}_scale``.
    There are no task variables: ``var_list`` is empty and ``task_parameter``
    is the outer dict (``re_forward`` may replace entries with tensors).

    Args:
        _input: NHWC image batch.
        name: scope name.
        outer_param_dict: outer parameters to share, or None to create them.
        model_param_dict: batch-norm parameters to share, or None.
        use_t, use_warp: must be False (see Raises).
        outer_method: outer strategy name (stored only).
        activation: nonlinearity of the residual units (default leaky ReLU 0.1).
        head_activation: nonlinearity after each head conv (default ReLU, as the original).
        var_collections: extra collections for the meta-parameters.
        conv_initializer: initializer of the conv kernels (default Glorot uniform).
        norm: ``"batch_norm"`` or None.
        data_type: ``tf.float32`` or ``tf.float64``; the input is cast to it. ``datatype`` is a deprecated
            spelling (DeprecationWarning).
        channels: input channels (default: the input's last dimension).
        dim_resnet: filters of each residual block (alias ``dim_hidden``).
        head_dims: filters of the two 1x1 head convolutions.
        head_pool: None (global average pool) or k (k x k VALID average pool, stride k).
        kernel: kernel size of the main-path convolutions.
        convs_per_block: main-path convolutions per block.
        reuse: False, True or ``tf.AUTO_REUSE`` (see :class:`boml.setup_model.BOMLNet`).
        dim_output: accepted for compatibility with the meta_learner call; unused.
        task_parameter: optional dict replacing outer parameters with tensors.
        output_weight_initializer: accepted for compatibility; unused (no classifier).
        dim_hidden: alias of ``dim_resnet``.

    Raises:
        InvalidArgumentError: ``use_t`` or ``use_warp``; a bad ``dim_resnet``,
            ``head_dims``, ``head_pool``, ``kernel``, ``norm`` or ``data_type``.
        ShapeError: the input is not rank 4, has an unknown channel count, or is
            too small or not static for ``head_pool``.

    References:
        Franceschi et al., "Bilevel Programming for Hyperparameter Optimization
        and Meta-Learning", ICML 2018.
        He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
        Liu et al., "BOML: A Modularized Bilevel Optimization Library in Python
        for Meta Learning", arXiv:2009.13357.
    """

    SKIP_BIAS = True

    PARAMETER_HINT = ("Share the dicts of a MetaFeat V2 network built with the same dim_resnet, head_dims, kernel, "
                      "convs_per_block, channels and norm (outer_param_dict=net.outer_param_dict, "
                      "model_param_dict=net.model_param_dict).")
    TASK_PARAMETER_HINT = "task_parameter needs one tensor per outer parameter, with its shape."

    @deprecated_keyword("datatype", "data_type")
    def __init__(self, _input, name="BOMLNetMetaFeatV2", outer_param_dict=None, model_param_dict=None, use_t=False,
                 use_warp=False, outer_method="Reverse", activation=leaky_relu_01, head_activation=tf.nn.relu,
                 var_collections=None, conv_initializer=None, norm="batch_norm", data_type=tf.float32, channels=None,
                 dim_resnet=None, head_dims=(2048, 512), head_pool=None, kernel=3, convs_per_block=3, reuse=False,
                 dim_output=None, task_parameter=None, output_weight_initializer=None, dim_hidden=None):
        what = type(self).__name__
        if dim_resnet is None and dim_hidden is None:
            dim_resnet = (64, 96, 128, 256)
        self._configure(_input, what, use_t, use_warp, activation, head_activation, conv_initializer, norm,
                        data_type, channels, dim_resnet, dim_hidden, head_dims, head_pool, kernel, convs_per_block)
        self.outer_method = outer_method
        self.dim_output = dim_output
        self.output_weight_initializer = output_weight_initializer
        self.meta_collections = [c for c in network_utils.as_list(var_collections)
                                 if c not in (tf.GraphKeys.GLOBAL_VARIABLES, extension.GraphKeys.METAPARAMETERS)]
        self._config = dict(
            outer_method=outer_method, activation=activation, head_activation=head_activation,
            var_collections=var_collections, conv_initializer=conv_initializer, norm=norm, data_type=data_type,
            channels=self.channels, dim_resnet=tuple(self.dim_resnet), head_dims=tuple(self.head_dims),
            head_pool=self.head_pool, kernel=self.kernel, convs_per_block=self.convs_per_block,
            dim_output=dim_output, output_weight_initializer=output_weight_initializer)
        super().__init__(_input, name=name, outer_param_dict=outer_param_dict, model_param_dict=model_param_dict,
                         task_parameter=task_parameter, var_collections=None, reuse=reuse)
        if self._created_outer:
            logger.debug("%s MODEL CREATED (scope %s)", self.name, self.scope_name)

    def _creates_variables(self):
        return not self.outer_param_dict

    # ----------------------------------------------------------------------------- parameters
    def _outer_shapes(self):
        return self._backbone_shapes()

    def _model_shapes(self):
        return self._norm_shapes()

    def create_outer_parameters(self):
        return self._create(self._outer_shapes(), self.meta_collections)

    def create_model_parameters(self):
        return self._create(self._model_shapes(), self.meta_collections)

    # ----------------------------------------------------------------------------- graph
    def _forward(self):
        x = network_utils.cast_input(self.layers[0], self.datatype)
        features = self._residual_features(x, self.task_parameter, self.model_param_dict)
        self.layers.append(tf.identity(features, name="representation"))

    def _rebuild(self, new_input, task_parameter):
        return type(self)(new_input, name=self.name, outer_param_dict=self.outer_param_dict,
                          model_param_dict=self.model_param_dict, task_parameter=task_parameter, **self._config)


def BOMLNetOmniglotMetaFeatV2(_input, name="BOMLNetOmniglotMetaFeatV2", **kwargs):  # noqa: N802
    """MetaFeat V2 for Omniglot: 1 channel, residual blocks of 64 and 96 filters, 512 features.

    A 28x28 input goes 28 -> 14 -> 7 and is globally average pooled (the
    original pooled 6x6 VALID; pass ``head_pool=6`` for that). Other keywords
    (``dim_output`` is accepted and ignored) go to :class:`BOMLNetMetaFeatV2`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=1, head_dims=(2048, 512), head_pool=None))
    if "dim_hidden" not in kwargs:
        kwargs.setdefault("dim_resnet", (64, 96))
    return BOMLNetMetaFeatV2(_input, name=name, **kwargs)


def BOMLNetMiniMetaFeatV2(_input, name="BOMLNetMiniMetaFeatV2", **kwargs):  # noqa: N802
    """MetaFeat V2 for Mini-ImageNet: 3 channels, residual blocks of 64, 96, 128 and 256 filters.

    An 84x84 input goes 84 -> 42 -> 21 -> 11 -> 6, is average pooled 6x6 and
    gives 512 features. Other keywords go to :class:`BOMLNetMetaFeatV2`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=3, head_dims=(2048, 512), head_pool=6))
    if "dim_hidden" not in kwargs:
        kwargs.setdefault("dim_resnet", (64, 96, 128, 256))
    return BOMLNetMetaFeatV2(_input, name=name, **kwargs)
