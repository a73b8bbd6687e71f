"""Network construction for the facade: registry look-up of the meta-learner and the base learner."""
import inspect
import re

import tensorflow.compat.v1 as tf

from boml import extension
from boml.errors import InvalidArgumentError, PhaseError, UnknownNameError, describe_allowed

__all__ = ["build_meta_learner", "build_base_learner", "episode_starts", "task_variables"]


def _dim_output(dataset, model_args):
    if "dim_output" in model_args:
        return model_args.pop("dim_output")
    train = getattr(dataset, "train", dataset)
    return getattr(train, "dim_target", None)


def _takes(factory, keyword):
    parameters = inspect.signature(factory).parameters.values()
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in parameters)


def build_meta_learner(method, _input, dataset, meta_model, name, use_t, use_warp, model_args):
    """Builds the registered network ``<dataset><method><version>`` (or ``<method><version>``).

    Returns:
        ``(network, (factory, keyword arguments) for the base learner, settings for param_dict)``.

    Raises:
        UnknownNameError: no network is registered under the candidate names.
        InvalidArgumentError: a MetaInit network without a number of classes, or a
            ``data_type`` other than the input's dtype.
    """
    version = str(meta_model)
    if re.fullmatch(r"[vV]\d+", version):  # "v1" (the original's default) means "V1"
        version = version.upper()
    dataset_name = getattr(getattr(dataset, "train", dataset), "name", None) if dataset is not None else None
    candidates = ([f"{dataset_name}{method}{version}"] if dataset_name else []) + [f"{method}{version}"]
    factory = next((extension.NETWORKS.get(c) for c in candidates if c in extension.NETWORKS), None)
    if factory is None:
        raise UnknownNameError(
            f"No network registered for meta_model={meta_model!r} (looked for {candidates}). Registered networks: "
            f"{describe_allowed(extension.NETWORKS.names())}. Register one with boml.extension.register_network."
        )
    kwargs = dict(model_args)
    input_dtype = getattr(_input, "dtype", None)
    if input_dtype is not None and input_dtype.base_dtype.is_floating and _takes(factory, "data_type"):
        # The network computes in the experiment's dtype; an explicit other one would be a silent cast.
        given = kwargs.setdefault("data_type", input_dtype.base_dtype)
        if tf.as_dtype(given) != input_dtype.base_dtype:
            raise InvalidArgumentError(
                f"meta_learner(data_type={tf.as_dtype(given).name}) does not match the input's dtype "
                f"{input_dtype.base_dtype.name} (the experiment's dtype). Leave data_type out (the network then "
                f"uses the input's dtype) or create the experiment with BOMLExperiment(..., dtype=...) to match."
            )
    dim_output = _dim_output(dataset, kwargs)
    kwargs.update(use_t=use_t, use_warp=use_warp)
    if method == "MetaInit":
        if dim_output is None:
            raise InvalidArgumentError(
                "meta_learner needs the number of classes: pass dataset=<Datasets> or dim_output=<int>."
            )
        kwargs["dim_output"] = dim_output
    net = factory(_input, name=name, **kwargs)
    settings = {"dim_output": dim_output, "use_t": use_t, "use_warp": use_warp, "meta_model": version}
    return net, (factory, kwargs), settings


def build_base_learner(method, _input, meta_learner, name, weights_initializer, network_factory, dim_output):
    """The task network: a copy of the meta-learner (MetaInit) or a linear head (MetaFeat).

    Raises:
        PhaseError: MetaInit without a previous ``meta_learner``.
        InvalidArgumentError: MetaFeat without a number of classes.
    """
    if method == "MetaInit":
        if network_factory is None:
            raise PhaseError("Call meta_learner(...) before base_learner(...).")
        factory, kwargs = network_factory
        return factory(_input, name=name, outer_param_dict=meta_learner.outer_param_dict,
                       model_param_dict=meta_learner.model_param_dict, **kwargs)
    from boml.setup_model import BOMLNetFeedForward

    if dim_output is None:
        raise InvalidArgumentError(
            "base_learner for MetaFeat needs the number of classes: pass dataset=<Datasets> (or "
            "dim_output=<int>) to meta_learner, or call set_output_dim(N) first."
        )
    return BOMLNetFeedForward(_input, dims=dim_output, output_weight_initializer=weights_initializer, name=name,
                              data_type=_input.dtype.base_dtype)


def episode_starts(var_list, networks):
    """The episode start of each variable as handed over by the network owning it (None: its initial value)."""
    starts = []
    for var in var_list:
        start = None
        for net in networks:
            start = net.initial_state_of(var) if hasattr(net, "initial_state_of") else None
            if start is not None:
                break
        starts.append(start)
    return starts


def task_variables(experiment, var_list, initial_state, networks):
    """The task variables of ``ll_problem`` and their episode starts.

    Args:
        experiment: the ``BOMLExperiment`` (its ``model`` supplies the default variables) or None.
        var_list: the variables given by the user, or None.
        initial_state: the starts given by the user, or None (then handed over by the networks).
        networks: the networks built by the facade.

    Returns:
        ``(var_list, initial_state)``.

    Raises:
        InvalidArgumentError: no variables were given and the experiment has no model.
    """
    model = getattr(experiment, "model", None)
    if var_list is None:
        if model is None:
            raise InvalidArgumentError(
                "ll_problem needs the task variables: pass var_list=ex.model.var_list, or set ex.model to the "
                "base learner and pass experiment=ex."
            )
        var_list = model.var_list
    var_list = list(var_list)
    if initial_state is None:
        initial_state = episode_starts(var_list, ([model] if model is not None else []) + list(networks))
    return var_list, initial_state
