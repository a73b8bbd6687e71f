"""MetaInit V2: residual networks whose whole initialization is meta-learned (MAML family).

The V2 networks replace the 4-block Conv-4 of V1 with residual blocks (a 1x1
skip convolution added to three 3x3 convolutions with batch norm) and a
1x1-convolution head, in the layout of the original BOML ``*MetaInitV2``
networks (``docs/ORIGINAL_BOML.md`` section 5.3), with its defects fixed:

* every parameter is learned: the skip convolutions, the 3x3 convolutions, the
  head convolutions and biases and the classifier are meta-parameters whose
  task copies the inner loop adapts; the batch-norm offsets and scales are
  meta-only (model) parameters;
* ``re_forward`` always connects the given task parameters (the original
  Omniglot V2 ignored them and built fresh uninitialized copies instead);
* conv biases directly followed by batch norm are not created (batch norm
  removes any per-channel constant, so they could never learn);
* T-layers and warp layers are not supported and are rejected with a clear
  error instead of being silently ignored.

:class:`BOMLNetResidualV2` holds what MetaInit V2 and MetaFeat V2
(:mod:`boml.setup_model.meta_feat_v2`) share.
"""
import logging
from collections import OrderedDict

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError, ShapeError
from boml.helpers import deprecated_keyword
from boml.setup_model import network_utils
from boml.setup_model.meta_init_v1 import _factory_kwargs
from boml.setup_model.network import BOMLNet

logger = logging.getLogger(__name__)

LEAKY_RELU_ALPHA = 0.1
"""Negative slope of the residual blocks' leaky ReLU (the original's value)."""


def leaky_relu_01(x):
    """``tf.nn.leaky_relu`` with slope 0.1: the default activation of the V2 residual blocks."""
    return tf.nn.leaky_relu(x, alpha=LEAKY_RELU_ALPHA)


class BOMLNetResidualV2(BOMLNet):
    """Shared machinery of the V2 residual networks (not registered; use a subclass).

    Architecture, for each block ``i`` of ``dim_resnet`` (``d_i`` filters):
    skip ``res{i}_id`` (1x1 conv, stride 1, plus ``res{i}_id_bias`` when
    :attr:`SKIP_BIAS`) added to the main path of ``convs_per_block`` units
    ``res{i}_conv{j}`` (``kernel x kernel`` conv, stride 1 SAME) -> batch norm
    (batch statistics, ``res{i}_bn{j}_offset`` / ``res{i}_bn{j}_scale``) ->
    ``activation`` (leaky ReLU 0.1), then a 2x2 max pool (stride 2, SAME).
    With ``norm=None`` each main-path conv gets a bias ``res{i}_bias{j}``
    instead of the batch norm. Head: 1x1 conv ``head_conv1`` + ``head_bias1``
    (``head_dims[0]`` filters) -> ``head_activation`` -> average pool
    (``head_pool``) -> 1x1 conv ``head_conv2`` + ``head_bias2``
    (``head_dims[1]`` filters) -> ``head_activation`` -> flatten.

    Subclasses set :attr:`SKIP_BIAS` and add their own parameters and output
    layers.
    """

    SKIP_BIAS = False

    # ----------------------------------------------------------------------------- configuration
    def _configure(self, _input, what, use_t, use_warp, activation, head_activation, conv_initializer, norm,
                   data_type, channels, dim_resnet, dim_hidden, head_dims, head_pool, kernel, convs_per_block):
        """Validates the common arguments and sets the attributes used by the shape and graph code."""
        if use_t or use_warp:
            flag = "use_t" if use_t else "use_warp"
            raise InvalidArgumentError(
                f"{what}: {flag}=True is not supported by the V2 residual networks (T-layers and warp layers "
                "exist only in the Conv-4 networks). Use meta_model='V1' for MT-net or WarpGrad, or pass "
                f"{flag}=False."
            )
        if dim_hidden is not None:  # accepted as an alias, so the V1 keyword works for both versions
            if dim_resnet is not None:
                raise InvalidArgumentError(
                    f"{what}: pass either dim_resnet=... or its alias dim_hidden=..., not both."
                )
            dim_resnet = dim_hidden
        widths = list(dim_resnet) if isinstance(dim_resnet, (list, tuple)) else None
        if not widths or not all(network_utils.is_positive_int(d) for d in widths):
            raise InvalidArgumentError(
                f"{what}: dim_resnet must be a non-empty list of positive integers (filters of each residual "
                f"block); received {dim_resnet!r}. Example: dim_resnet=(64, 96, 128, 256)."
            )
        heads = list(head_dims) if isinstance(head_dims, (list, tuple)) else None
        if not heads or len(heads) != 2 or not all(network_utils.is_positive_int(d) for d in heads):
            raise InvalidArgumentError(
                f"{what}: head_dims must be two positive integers (filters of the two 1x1 head convolutions); "
                f"received {head_dims!r}. Example: head_dims=(2048, 512)."
            )
        if head_pool is not None and not network_utils.is_positive_int(head_pool):
            raise InvalidArgumentError(
                f"{what}: head_pool must be None (global average pooling) or a positive integer k (k x k VALID "
                f"average pooling with stride k); received {head_pool!r}."
            )
        if not network_utils.is_positive_int(convs_per_block):
            raise InvalidArgumentError(
                f"{what}: convs_per_block must be a positive integer; received {convs_per_block!r}."
            )
        # check_conv_config validates kernel, data_type and activation (use_t/use_warp were handled above).
        _, self.datatype = network_utils.check_conv_config(what, widths, kernel, False, False, data_type, activation)
        if head_activation is not None and not callable(head_activation):
            raise InvalidArgumentError(
                f"{what}: head_activation must be a callable such as tf.nn.relu, or None; "
                f"received {head_activation!r}."
            )
        self.norm = network_utils.parse_norm(norm)
        self.channels = network_utils.check_image_input(_input, channels, what)
        self.dim_resnet = [int(d) for d in widths]
        self.head_dims = [int(d) for d in heads]
        self.head_pool = None if head_pool is None else int(head_pool)
        self.kernel = int(kernel)
        self.convs_per_block = int(convs_per_block)
        self.activation = activation
        self.head_activation = head_activation
        self.use_t = False
        self.use_warp = False
        self.conv_initializer = network_utils.as_initializer(
            conv_initializer, network_utils.GlorotUniform, "conv_initializer")
        self.bias_initializer = tf.zeros_initializer()
        self._pooled_size = self._compute_pooled_size(_input, what)
        self._feature_dim = self.head_dims[1] * self._pooled_size[0] * self._pooled_size[1]

    @property
    def dim_hidden(self):
        """Alias of ``dim_resnet`` (the filters of each block), the V1 attribute name."""
        return self.dim_resnet

    def _compute_pooled_size(self, _input, what):
        """Spatial size ``(h, w)`` of the head after pooling (``(1, 1)`` with global pooling)."""
        if self.head_pool is None:
            return 1, 1
        height, width = _input.shape.as_list()[1:3]
        n = len(self.dim_resnet)
        sizes = [network_utils.spatial_output_size(s, n, False) for s in (height, width)]
        if any(s is None for s in sizes):
            raise ShapeError(
                f"{what} with head_pool={self.head_pool} needs a static input height and width; received an input "
                f"of shape {_input.shape}. Give the placeholder a static shape such as [None, 84, 84, 3], or use "
                "head_pool=None (global average pooling)."
            )
        if any(s < self.head_pool for s in sizes):
            raise ShapeError(
                f"{what}: an input of shape {_input.shape} shrinks to {sizes[0]}x{sizes[1]} after {n} residual "
                f"blocks, smaller than the {self.head_pool}x{self.head_pool} head pooling. Use larger images, "
                "fewer blocks, a smaller head_pool, or head_pool=None (global average pooling)."
            )
        return tuple((s - self.head_pool) // self.head_pool + 1 for s in sizes)

    # ----------------------------------------------------------------------------- shapes
    def _backbone_shapes(self):
        """Skip, main-path and head parameters, in layer order."""
        shapes, c_in, k = OrderedDict(), self.channels, self.kernel
        for i, d in enumerate(self.dim_resnet):
            shapes[f"res{i}_id"] = [1, 1, c_in, d]
            if self.SKIP_BIAS:
                shapes[f"res{i}_id_bias"] = [d]
            c = c_in
            for j in range(self.convs_per_block):
                shapes[f"res{i}_conv{j}"] = [k, k, c, d]
                if self.norm is None:
                    shapes[f"res{i}_bias{j}"] = [d]
                c = d
            c_in = d
        h1, h2 = self.head_dims
        shapes["head_conv1"] = [1, 1, c_in, h1]
        shapes["head_bias1"] = [h1]
        shapes["head_conv2"] = [1, 1, h1, h2]
        shapes["head_bias2"] = [h2]
        return shapes

    def _norm_shapes(self):
        """Batch-norm offsets and scales, in layer order (none with ``norm=None``)."""
        shapes = OrderedDict()
        if self.norm is not None:
            for i, d in enumerate(self.dim_resnet):
                for j in range(self.convs_per_block):
                    shapes[f"res{i}_bn{j}_offset"] = [d]
                    shapes[f"res{i}_bn{j}_scale"] = [d]
        return shapes

    def _initializer_for(self, key):
        if key.endswith("_scale"):
            return tf.ones_initializer()
        if key.endswith("_offset") or "bias" in key:
            return self.bias_initializer
        return self.conv_initializer

    def _create(self, shapes, collections=None):
        """Creates one meta-parameter per entry of ``shapes`` with :func:`boml.extension.get_outerparameter`."""
        return OrderedDict(
            (key, extension.get_outerparameter(key, initializer=self._initializer_for(key), shape=shape,
                                               dtype=self.datatype, collections=collections))
            for key, shape in shapes.items())

    # ----------------------------------------------------------------------------- graph
    def _residual_features(self, x, params, norm):
        """Runs the residual blocks and the head on ``x``; appends every block output to ``layers``."""
        for i in range(len(self.dim_resnet)):
            convs = [params[f"res{i}_conv{j}"] for j in range(self.convs_per_block)]
            biases = ([params[f"res{i}_bias{j}"] for j in range(self.convs_per_block)]
                      if self.norm is None else None)
            norm_params = ([(norm[f"res{i}_bn{j}_offset"], norm[f"res{i}_bn{j}_scale"])
                            for j in range(self.convs_per_block)] if self.norm is not None else None)
            x = network_utils.residual_block(
                x, params[f"res{i}_id"], convs, skip_bias=params.get(f"res{i}_id_bias"), conv_biases=biases,
                norm_params=norm_params, activation=self.activation, name=f"res{i}")
            self.layers.append(x)
        with tf.name_scope("head"):
            x = tf.add(network_utils.conv2d(x, params["head_conv1"]), params["head_bias1"], name="conv1")
            if self.head_activation is not None:
                x = self.head_activation(x)
            if self.head_pool is None:
                x = tf.reduce_mean(x, [1, 2], keepdims=True, name="global_average_pool")
            else:
                x = tf.nn.avg_pool2d(x, ksize=self.head_pool, strides=self.head_pool, padding="VALID",
                                     name="average_pool")
            self.layers.append(x)
            x = tf.add(network_utils.conv2d(x, params["head_conv2"]), params["head_bias2"], name="conv2")
            if self.head_activation is not None:
                x = self.head_activation(x)
            self.layers.append(x)
        return tf.reshape(x, [-1, self._feature_dim], name="features")


class BOMLNetMetaInitV2(BOMLNetResidualV2):
    """Residual classifier whose initialization is meta-learned (MAML with the V2 architecture).

    Architecture (see :class:`BOMLNetResidualV2`): ``len(dim_resnet)``
    residual blocks -> 1x1 conv head (linear, as in the original) -> average
    pool -> 1x1 conv -> flatten -> ``fc_weight`` / ``fc_bias`` logits. The
    skip convolutions have no bias. With the MiniImageNet defaults an 84x84x3
    input goes 84 -> 42 -> 21 -> 11 -> 6, is pooled 6x6 to 1x1 and gives 512
    features; with the Omniglot defaults 28 -> 14 -> 7, globally pooled.

    Parameters:
    * ``outer_param_dict`` (adapted in the inner loop), in layer order:
      ``res{i}_id``, ``res{i}_conv{j}`` (``res{i}_bias{j}`` with ``norm=None``),
      ``head_conv1, head_bias1, head_conv2, head_bias2, fc_weight, fc_bias``;
    * ``model_param_dict`` (meta-only, learned by the outer optimizer):
      ``res{i}_bn{j}_offset`` (zeros) and ``res{i}_bn{j}_scale`` (ones).
    Conv kernels and ``fc_weight`` start Glorot-uniform, biases at zero.

    Roles (as :class:`boml.setup_model.BOMLNetMetaInitV1`): the meta-learner
    creates the parameters and reads them directly (``var_list`` empty); a base
    learner (``outer_param_dict`` given) creates one task copy per outer
    parameter, starting every episode from it
    (``BOMLNet.initial_state_of``); ``re_forward`` connects given
    task parameters (tensors allowed) and creates nothing.

    Args:
        _input: NHWC image batch.
        dim_output: number of classes N (an int, or a sequence ending with it).
        name: scope name.
        outer_param_dict: the meta-learner's ``outer_param_dict`` (base learner) or None.
        model_param_dict: the meta-learner's ``model_param_dict`` (base learner) or None.
        task_parameter: dict ``name -> tensor`` for the forward pass, or None.
        use_t, use_warp: must be False (see Raises).
        outer_method: the outer strategy name (stored only).
        activation: nonlinearity of the residual units (default leaky ReLU 0.1).
        head_activation: nonlinearity after each head conv (default None: linear head).
        var_collections: collections of the task copies (default ``MODEL_VARIABLES``).
        conv_initializer: initializer of the conv kernels (default Glorot uniform).
        output_weight_initializer: initializer of ``fc_weight`` (default Glorot
            uniform; the original Omniglot V2 used zeros, which leaves every
            layer below the classifier unchanged by the first inner step).
        norm: ``"batch_norm"`` or None.
        data_type: ``tf.float32`` or ``tf.float64``; the input is cast to it. ``datatype`` is a deprecated
            spelling (DeprecationWarning).
        channels: input channels (default: the input's last dimension).
        dim_resnet: filters of each residual block (alias ``dim_hidden``).
        head_dims: filters of the two 1x1 head convolutions.
        head_pool: None (global average pool) or k (k x k VALID average pool, stride k;
            the pooled map is flattened if larger than 1x1).
        kernel: kernel size of the main-path convolutions.
        convs_per_block: main-path convolutions per block.
        reuse: False, True or ``tf.AUTO_REUSE`` (see :class:`BOMLNet`).
        dim_hidden: alias of ``dim_resnet``.

    Raises:
        InvalidArgumentError: ``use_t`` or ``use_warp``; a bad ``dim_output``,
            ``dim_resnet``, ``head_dims``, ``head_pool``, ``kernel``, ``norm`` or
            ``data_type``; shared dicts of another dtype or missing entries.
        ShapeError: the input is not rank 4, has an unknown channel count, is too
            small or not static for ``head_pool``, or the shared parameters do not fit.

    References:
        Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation
        of Deep Networks", ICML 2017.
        He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
        Mishra, Rohaninejad, Chen & Abbeel, "A Simple Neural Attentive
        Meta-Learner", ICLR 2018 (the residual few-shot backbone).
        Liu et al., "BOML: A Modularized Bilevel Optimization Library in Python
        for Meta Learning", arXiv:2009.13357.
    """

    SKIP_BIAS = False

    PARAMETER_HINT = ("A base learner must be built with the meta-learner's dicts (outer_param_dict="
                      "meta_learner.outer_param_dict, model_param_dict=meta_learner.model_param_dict) and the same "
                      "dim_output, dim_resnet, head_dims, head_pool, kernel, convs_per_block and norm.")

    @deprecated_keyword("datatype", "data_type")
    def __init__(self, _input, dim_output, name="BOMLNetMetaInitV2", outer_param_dict=None, model_param_dict=None,
                 task_parameter=None, use_t=False, use_warp=False, outer_method="Simple", activation=leaky_relu_01,
                 head_activation=None, var_collections=None, conv_initializer=None, output_weight_initializer=None,
                 norm="batch_norm", data_type=tf.float32, channels=None, dim_resnet=None,
                 head_dims=(2048, 512), head_pool=None, kernel=3, convs_per_block=3, reuse=False, dim_hidden=None):
        what = type(self).__name__
        self.dims, self.dim_output = network_utils.check_dim_output(what, dim_output)
        if dim_resnet is None and dim_hidden is None:
            dim_resnet = (64, 96, 128, 256)
        self._configure(_input, what, use_t, use_warp, activation, head_activation, conv_initializer, norm,
                        data_type, channels, dim_resnet, dim_hidden, head_dims, head_pool, kernel, convs_per_block)
        self.outer_method = outer_method
        self.output_weight_initializer = network_utils.as_initializer(
            output_weight_initializer, network_utils.GlorotUniform, "output_weight_initializer")
        self.meta_collections = None
        self._config = dict(
            outer_method=outer_method, activation=activation, head_activation=head_activation,
            var_collections=var_collections, conv_initializer=conv_initializer,
            output_weight_initializer=output_weight_initializer, norm=norm, data_type=data_type,
            channels=self.channels, dim_resnet=tuple(self.dim_resnet), head_dims=tuple(self.head_dims),
            head_pool=self.head_pool, kernel=self.kernel, convs_per_block=self.convs_per_block)
        super().__init__(_input, name=name, outer_param_dict=outer_param_dict, model_param_dict=model_param_dict,
                         task_parameter=task_parameter, var_collections=var_collections, reuse=reuse)
        if self._created_outer or self.var_list:
            logger.debug("%s MODEL CREATED (scope %s)", self.name, self.scope_name)

    # ----------------------------------------------------------------------------- shapes
    def _outer_shapes(self):
        shapes = self._backbone_shapes()
        shapes["fc_weight"] = [self._feature_dim, self.dim_output]
        shapes["fc_bias"] = [self.dim_output]
        return shapes

    def _model_shapes(self):
        return self._norm_shapes()

    def _initializer_for(self, key):
        if key == "fc_weight":
            return self.output_weight_initializer
        return super()._initializer_for(key)

    # ----------------------------------------------------------------------------- creation
    def create_outer_parameters(self):
        return self._create(self._outer_shapes())

    def create_model_parameters(self):
        return self._create(self._model_shapes())

    def create_task_parameters(self):
        return self.copy_outer_parameters()

    # ----------------------------------------------------------------------------- graph
    def _forward(self):
        task = self.task_parameter
        x = network_utils.cast_input(self.layers[0], self.datatype)
        features = self._residual_features(x, task, self.model_param_dict)
        self.layers.append(features)
        self.layers.append(tf.add(tf.matmul(features, task["fc_weight"]), task["fc_bias"], name="logits"))

    def _rebuild(self, new_input, task_parameter):
        return type(self)(new_input, self.dims, name=self.name, outer_param_dict=self.outer_param_dict,
                          model_param_dict=self.model_param_dict, task_parameter=task_parameter, **self._config)


def BOMLNetOmniglotMetaInitV2(_input, dim_output, name="BOMLNetOmniglotMetaInitV2", **kwargs):  # noqa: N802
    """MetaInit V2 for Omniglot: 1 channel, residual blocks of 64 and 96 filters, 2048/512 head.

    A 28x28 input goes 28 -> 14 -> 7 and is globally average pooled (the
    original pooled 6x6 VALID, dropping the last row and column; pass
    ``head_pool=6`` for that). Other keywords go to :class:`BOMLNetMetaInitV2`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=1, head_dims=(2048, 512), head_pool=None))
    if "dim_hidden" not in kwargs:
        kwargs.setdefault("dim_resnet", (64, 96))
    return BOMLNetMetaInitV2(_input, dim_output, name=name, **kwargs)


def BOMLNetMiniMetaInitV2(_input, dim_output, name="BOMLNetMiniMetaInitV2", **kwargs):  # noqa: N802
    """MetaInit V2 for Mini-ImageNet: 3 channels, residual blocks of 64, 96, 128 and 256 filters.

    An 84x84 input goes 84 -> 42 -> 21 -> 11 -> 6, is average pooled 6x6
    (VALID) to 1x1 and gives 512 features. Other keywords go to
    :class:`BOMLNetMetaInitV2`.
    """
    kwargs = _factory_kwargs(kwargs, dict(channels=3, head_dims=(2048, 512), head_pool=6))
    if "dim_hidden" not in kwargs:
        kwargs.setdefault("dim_resnet", (64, 96, 128, 256))
    return BOMLNetMetaInitV2(_input, dim_output, name=name, **kwargs)
