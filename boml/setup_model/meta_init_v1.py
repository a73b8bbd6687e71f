"""MetaInit V1: the 4-block convolutional network of MAML ("C4L").

The meta-learner owns the initialization ``x`` (``outer_param_dict``); each
base learner owns task copies ``theta`` of it (its ``var_list``), which the
inner loop adapts starting every episode from the current ``x``.
"""
import logging
from collections import OrderedDict

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError
from boml.helpers import deprecated_keyword
from boml.setup_model import checks, network_utils
from boml.setup_model.network import BOMLNet

logger = logging.getLogger(__name__)


class BOMLNetMetaInitV1(BOMLNet):
    """MAML's Conv-4 classifier, with optional T-layers (MT-net) or warp layers (WarpGrad).

    Architecture, for each block ``i`` of ``dim_hidden``:
    ``conv{i}`` (``kernel x kernel``, stride 2 SAME, or stride 1 SAME when
    ``max_pool``) + ``bias{i}`` -> optional T-layer (1x1 conv ``conv{i}_z``,
    initialized to the identity) or warp layer (``kernel x kernel`` conv
    ``conv{i}_z`` + ``bias{i}_z``) -> batch norm (batch statistics, offset
    ``bn{i}_offset`` and scale ``bn{i}_scale``) -> ``activation`` -> 2x2 max pool
    (``max_pool`` only). Head: global average pool over height and width
    (flatten when ``max_pool``), then ``w{n} / bias{n}`` (``n = len(dim_hidden)``);
    with ``use_t`` the logits are multiplied by ``w{n}_z`` (identity at start).

    Parameters:
    * ``outer_param_dict`` (adapted in the inner loop): ``conv0, bias0, ...,
      w{n}, bias{n}``;
    * ``model_param_dict`` (meta-only), in layer order: ``conv{i}_z``
      (``bias{i}_z``) and ``bn{i}_offset, bn{i}_scale`` for each block, then
      ``w{n}_z`` with ``use_t``.
    All of them are created with :func:`boml.extension.get_outerparameter`
    (non-trainable, in ``GraphKeys.METAPARAMETERS``), outer parameters first.

    Roles:
    * meta-learner (``outer_param_dict`` None): creates the parameters;
      ``task_parameter`` is the outer parameters and ``var_list`` is empty;
    * base learner (``outer_param_dict`` given, ``task_parameter`` None): creates
      one task copy variable per outer parameter (same name, in its own scope,
      in ``var_collections`` and ``GLOBAL_VARIABLES``), declares the outer
      parameter as its episode start (``BOMLNet.initial_state_of``)
      and uses the copies; ``var_list`` is the copies in outer order;
    * ``task_parameter`` given (``re_forward``): uses those tensors, creates nothing.

    Args:
        _input: NHWC image batch.
        dim_output: number of classes N (an int, or a sequence ending with it).
        name: scope name.
        outer_param_dict: the meta-learner's ``outer_param_dict`` (base learner) or None.
        model_param_dict: the meta-learner's ``model_param_dict`` (base learner) or None.
        task_parameter: dict ``name -> tensor`` for the forward pass, or None.
        use_t: insert T-layers (Lee & Choi 2018).
        use_warp: insert warp layers (Flennerhag et al. 2020).
        outer_method: the outer strategy name (stored only).
        activation: nonlinearity after normalization (None for linear).
        var_collections: collections of the task copies (default ``MODEL_VARIABLES``).
        conv_initializer: initializer of the conv and warp kernels (default Glorot uniform).
        output_weight_initializer: initializer of ``w{n}`` (default Glorot uniform).
        norm: ``"batch_norm"`` or None.
        data_type: ``tf.float32`` or ``tf.float64``; the input is cast to it. ``datatype`` is a deprecated
            spelling (DeprecationWarning).
        channels: input channels (default: the input's last dimension).
        dim_hidden: filters of each block.
        kernel: conv kernel size.
        max_pool: stride-1 convs followed by 2x2 max pooling, flattened head.
        reuse: False, True or ``tf.AUTO_REUSE`` (see :class:`BOMLNet`).

    Raises:
        ShapeError: the input is not rank 4, its channel count is unknown, or the
            shared parameters do not fit it.
        InvalidArgumentError: a bad ``dim_output``, ``dim_hidden``, ``kernel``,
            ``norm``, ``data_type``, or ``use_t`` together with ``use_warp``.

    References:
        Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation
        of Deep Networks", ICML 2017.
        Lee & Choi, "Gradient-Based Meta-Learning with Learned Layerwise Metric
        and Subspace", ICML 2018.
        Flennerhag et al., "Meta-Learning with Warped Gradient Descent", ICLR 2020.
    """

    PARAMETER_HINT = ("A base learner must be built with the meta-learner's dicts: outer_param_dict="
                      "meta_learner.outer_param_dict, model_param_dict=meta_learner.model_param_dict, and the same "
                      "dim_output, dim_hidden, use_t, use_warp, norm and max_pool.")

    @deprecated_keyword("datatype", "data_type")
    def __init__(self, _input, dim_output, name="BOMLNetMetaInitV1", outer_param_dict=None, model_param_dict=None,
                 task_parameter=None, use_t=False, use_warp=False, outer_method="Simple", activation=tf.nn.relu,
                 var_collections=None, conv_initializer=None, output_weight_initializer=None, norm="batch_norm",
                 data_type=tf.float32, channels=None, dim_hidden=(64, 64, 64, 64), kernel=3, max_pool=False,
                 reuse=False):
        what = type(self).__name__
        self.dims, self.dim_output = network_utils.check_dim_output(what, dim_output)
        checks.configure_conv4(self, _input, what, dim_hidden, kernel, use_t, use_warp, data_type, activation, norm,
                               channels, max_pool, outer_method, conv_initializer)
        self.output_weight_initializer = network_utils.as_initializer(
            output_weight_initializer, network_utils.GlorotUniform, "output_weight_initializer")
        self.meta_collections = None
        self._config = dict(
            use_t=use_t, use_warp=use_warp, outer_method=outer_method, activation=activation,
            var_collections=var_collections, conv_initializer=conv_initializer,
            output_weight_initializer=output_weight_initializer, norm=norm, data_type=data_type,
            channels=self.channels, dim_hidden=tuple(self.dim_hidden), kernel=kernel, max_pool=max_pool)
        self._feature_dim = self._compute_feature_dim(_input)
        super().__init__(_input, name=name, outer_param_dict=outer_param_dict, model_param_dict=model_param_dict,
                         task_parameter=task_parameter, var_collections=var_collections, reuse=reuse)
        if self._created_outer or self.var_list:
            logger.debug("%s MODEL CREATED (scope %s)", self.name, self.scope_name)

    # ----------------------------------------------------------------------------- shapes
    def _compute_feature_dim(self, _input):
        d_last = self.dim_hidden[-1]
        if not self.max_pool:
            return d_last
        h, w = checks.conv4_output_size(self, _input, "with max_pool=True flattens the last block",
                                        "Give the placeholder a static shape such as [None, 84, 84, 3].")
        return d_last * h * w

    def _outer_shapes(self):
        shapes = OrderedDict()
        c_in = self.channels
        for i, d in enumerate(self.dim_hidden):
            shapes[f"conv{i}"] = [self.kernel, self.kernel, c_in, d]
            shapes[f"bias{i}"] = [d]
            c_in = d
        n = len(self.dim_hidden)
        shapes[f"w{n}"] = [self._feature_dim, self.dim_output]
        shapes[f"bias{n}"] = [self.dim_output]
        return shapes

    def _model_shapes(self):
        shapes = network_utils.block_model_shapes(self)
        if self.use_t:
            n = len(self.dim_hidden)
            shapes[f"w{n}_z"] = [self.dim_output, self.dim_output]
        return shapes

    # ----------------------------------------------------------------------------- creation
    def create_outer_parameters(self):
        params = OrderedDict()
        for i in range(len(self.dim_hidden)):
            params[f"conv{i}"] = network_utils.get_conv_weight(self, i, self.conv_initializer)
            params[f"bias{i}"] = network_utils.get_bias_weight(self, i, self.bias_initializer)
        n = len(self.dim_hidden)
        params[f"w{n}"] = extension.get_outerparameter(
            f"w{n}", initializer=self.output_weight_initializer, shape=[self._feature_dim, self.dim_output],
            dtype=self.datatype)
        params[f"bias{n}"] = extension.get_outerparameter(
            f"bias{n}", initializer=self.bias_initializer, shape=[self.dim_output], dtype=self.datatype)
        return params

    def create_model_parameters(self):
        params = network_utils.create_block_model_parameters(self)
        if self.use_t:
            n = len(self.dim_hidden)
            params[f"w{n}_z"] = network_utils.get_identity(self.dim_output, f"w{n}_z", conv=False,
                                                           dtype=self.datatype)
        return params

    def create_task_parameters(self):
        return self.copy_outer_parameters()

    # ----------------------------------------------------------------------------- graph
    def _forward(self):
        task, model = self.task_parameter, self.model_param_dict
        x = network_utils.cast_input(self.layers[0], self.datatype)
        for i in range(len(self.dim_hidden)):
            offset, scale = model.get(f"bn{i}_offset"), model.get(f"bn{i}_scale")
            with tf.name_scope(f"block{i}"):
                if self.use_t:
                    x = network_utils.conv_block_t(self, task[f"conv{i}"], task[f"bias{i}"], model[f"conv{i}_z"],
                                                   offset, scale, inputs=x)
                elif self.use_warp:
                    x = network_utils.conv_block_warp(self, task[f"conv{i}"], task[f"bias{i}"],
                                                      model[f"conv{i}_z"], model[f"bias{i}_z"], offset, scale,
                                                      inputs=x)
                else:
                    x = network_utils.conv_block(self, task[f"conv{i}"], task[f"bias{i}"], offset, scale, inputs=x)
            self.layers.append(x)
        n = len(self.dim_hidden)
        if self.max_pool:
            self.layers.append(network_utils.flatten(self.out))
        else:
            self.layers.append(tf.reduce_mean(self.out, [1, 2], name="global_average_pool"))
        self.layers.append(tf.add(tf.matmul(self.out, task[f"w{n}"]), task[f"bias{n}"], name="logits"))
        if self.use_t:
            self.layers.append(tf.matmul(self.out, model[f"w{n}_z"], name="logits_t"))

    def _rebuild(self, new_input, task_parameter):
        return BOMLNetMetaInitV1(new_input, self.dims, name=self.name, outer_param_dict=self.outer_param_dict,
                                 model_param_dict=self.model_param_dict, task_parameter=task_parameter,
                                 **self._config)


def _factory_kwargs(kwargs, defaults):
    if "batch_norm" in kwargs:  # the original factories named the normalization argument batch_norm
        if "norm" in kwargs:
            raise InvalidArgumentError("Pass either norm=... or its old name batch_norm=..., not both.")
        kwargs["norm"] = kwargs.pop("batch_norm")
    for key, value in defaults.items():
        kwargs.setdefault(key, value)
    return kwargs


def BOMLNetOmniglotMetaInitV1(_input, dim_output, name="BOMLNetOmniglotMetaInitV1", **kwargs):  # noqa: N802
    """MAML Conv-4 for Omniglot: 1 channel, 4 x 64 filters, stride-2 convs.

    A 28x28 input goes 28 -> 14 -> 7 -> 4 -> 2, is averaged to 64 features and
    mapped to ``dim_output`` logits. Other keywords go to :class:`BOMLNetMetaInitV1`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=1, dim_hidden=(64, 64, 64, 64), max_pool=False))
    return BOMLNetMetaInitV1(_input, dim_output, name=name, **kwargs)


def BOMLNetMiniMetaInitV1(_input, dim_output, name="BOMLNetMiniMetaInitV1", **kwargs):  # noqa: N802
    """MAML Conv-4 for Mini-ImageNet: 3 channels, 4 x 32 filters, stride-1 convs with 2x2 max pooling.

    An 84x84 input goes 84 -> 42 -> 21 -> 10 -> 5, is flattened to 5*5*32 = 800
    features and mapped to ``dim_output`` logits. Other keywords go to
    :class:`BOMLNetMetaInitV1`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=3, dim_hidden=(32, 32, 32, 32), max_pool=True))
    return BOMLNetMetaInitV1(_input, dim_output, name=name, **kwargs)
