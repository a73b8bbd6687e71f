"""The checks of a resolved :class:`~boml.workflow.config.Config` (names read from the registries)."""
import numbers
import os

from boml.errors import InvalidArgumentError, InvalidCombinationError, UnknownNameError, describe_allowed
from boml.workflow.config import (DATASETS, IMPLICIT_SOLVERS, LR_GRANULARITIES, META_LR_SCHEDULES,
                                  SOLVER_FAILURE_MODES, SPLITS, field_default, field_type, fields, is_finite_number)


def inner_optimizer_names():
    """The registered inner optimizers (``boml.extension.OPTIMIZERS``)."""
    import boml.optimizer  # noqa: F401  (registers the built-in optimizers)
    from boml import extension

    return sorted(extension.OPTIMIZERS.names())


def outer_optimizer_names():
    """The outer optimizers the facade accepts (``ul_problem(outer_objective_optimizer=...)``)."""
    from boml.boml_optimizer import optimizer as facade

    return sorted(facade.OUTER_OPTIMIZERS)


def takes_while_loop_threshold(inner_method):
    """True when the registered lower strategy ``inner_method`` has the ``while_loop_threshold`` option."""
    import boml.lower_iter  # noqa: F401  (registers the built-in lower strategies)
    from boml import extension

    return "while_loop_threshold" in extension.LOWER_ITERS.get(inner_method).Options.names()


def takes_recompute_every(outer_method):
    """True when the registered upper strategy ``outer_method`` has the ``recompute_every`` option."""
    import boml.upper_iter  # noqa: F401  (registers the built-in upper strategies)
    from boml import extension

    return "recompute_every" in extension.UPPER_ITERS.get(outer_method).Options.names()


def _check_range(field, value):
    kind, optional = field_type(field)
    if value is None and optional:
        return
    minimum, strict, maximum = field.metadata["minimum"], field.metadata["strict"], field.metadata["maximum"]
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (minimum is not None
                                                                                   and value < minimum):
            bound = f">= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
            raise InvalidArgumentError(f"{field.name} must be an integer {bound}; received {value!r}.")
        if maximum is not None and value > maximum:
            raise InvalidArgumentError(f"{field.name} must be an integer >= {minimum} and <= {maximum}; "
                                       f"received {value!r}.")
    elif kind is float:
        if not is_finite_number(value):
            raise InvalidArgumentError(f"{field.name} must be a finite number; received {value!r}.")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            bound = "a positive finite number" if strict and minimum == 0 else f"a finite number >= {minimum}"
            raise InvalidArgumentError(f"{field.name} must be {bound}; received {value!r}.")
    elif kind is bool and not isinstance(value, bool):
        raise InvalidArgumentError(f"{field.name} must be true or false; received {value!r}.")


def recompute_every(value):
    """The ``recompute_every`` option of a configuration value: None, ``"sqrt"`` or a positive segment length.

    Raises:
        InvalidArgumentError: any other value.
    """
    if value is None or str(value).strip().lower() == "none":
        return None
    text = str(value).strip().lower()
    if text == "sqrt":
        return "sqrt"
    if not isinstance(value, bool) and text.isdigit() and int(text) >= 1:
        return int(text)
    raise InvalidArgumentError(
        f"recompute_every must be none (keep every inner step for the reverse pass), sqrt or a positive segment "
        f"length K; received {value!r}. Pass for example --recompute_every sqrt or --recompute_every 32.")


def validate(c):
    """Checks every field of the resolved configuration ``c`` and returns it.

    Raises:
        UnknownNameError: unknown dataset, split, optimizer or step-size granularity.
        InvalidCombinationError: the method triple is not allowed.
        InvalidArgumentError: a value is out of range or flags contradict each other.
    """
    from boml.boml_optimizer import allowed_triples

    if (c.method, c.inner_method, c.outer_method) not in set(allowed_triples()):
        raise InvalidCombinationError(
            f"The combination (method={c.method!r}, inner_method={c.inner_method!r}, "
            f"outer_method={c.outer_method!r}) is not allowed; allowed triples: "
            f"{', '.join(str(t) for t in allowed_triples())}."
        )
    for what, value, allowed in (("dataset", c.dataset, DATASETS), ("split", c.split, SPLITS),
                                 ("inner_opt", c.inner_opt, inner_optimizer_names()),
                                 ("outer_opt", c.outer_opt, outer_optimizer_names()),
                                 ("lr_granularity", c.lr_granularity, LR_GRANULARITIES),
                                 ("solver", c.solver, IMPLICIT_SOLVERS),
                                 ("solver_failure", c.solver_failure, SOLVER_FAILURE_MODES),
                                 ("meta_lr_schedule", c.meta_lr_schedule, META_LR_SCHEDULES)):
        if value not in allowed:
            raise UnknownNameError(f"Unknown {what} {value!r}; allowed: {describe_allowed(allowed)}.")
    if isinstance(c.classes, numbers.Integral) and not isinstance(c.classes, bool) and c.classes < 2:
        raise InvalidArgumentError(f"classes must be >= 2 (N-way classification); received {c.classes}.")
    for field in fields():
        _check_range(field, getattr(c, field.name))
    if c.truncate_iter >= 0 and c.outer_method != "Reverse":
        raise InvalidArgumentError(
            f"truncate_iter={c.truncate_iter} needs outer_method='Reverse' (TRHG); received "
            f"outer_method={c.outer_method!r}."
        )
    if c.truncate_iter > c.T:
        raise InvalidArgumentError(f"truncate_iter={c.truncate_iter} cannot exceed T={c.T}.")
    if c.cg_max_iter != 50 and c.outer_method != "Implicit":
        raise InvalidArgumentError(
            f"cg_max_iter is a setting of outer_method='Implicit' (algorithms 'hoag', 'imaml'); received "
            f"cg_max_iter={c.cg_max_iter!r} with outer_method={c.outer_method!r}.")
    implicit_changed = [k for k, default in (("solver", "cg"), ("cg_damping", 0.0), ("neumann_terms", 20),
                                             ("solver_failure", "warn")) if getattr(c, k) != default]
    if implicit_changed and c.outer_method != "Implicit":
        raise InvalidArgumentError(
            f"{', '.join(implicit_changed)} are settings of outer_method='Implicit' (algorithms 'hoag', 'imaml'); "
            f"received outer_method={c.outer_method!r}.")
    changed = [k for k, default in (("multi_step_loss", False), ("msl_anneal_iterations", 1000),
                                    ("first_order_iterations", 0), ("learn_step_sizes", False),
                                    ("per_step_bn_weights", False), ("per_step_bn_statistics", False),
                                    ("bn_momentum", 0.9)) if getattr(c, k) != default]
    if changed and c.outer_method != "MAML++":
        raise InvalidArgumentError(
            f"{', '.join(changed)} are settings of outer_method='MAML++' (algorithm 'maml++'); received "
            f"outer_method={c.outer_method!r}.")
    if not c.bn_momentum < 1:
        raise InvalidArgumentError(f"bn_momentum must be in [0, 1) (the weight of the old running statistics); "
                                   f"received {c.bn_momentum!r}. Try 0.9.")
    if c.learn_step_sizes and c.learn_lr:
        raise InvalidArgumentError("learn_step_sizes (MAML++ LSLR) learns its own per-layer per-step step sizes; "
                                   "received learn_lr=True as well. Use one of the two.")
    if c.meta_lr_min and c.meta_lr_schedule != "cosine":
        raise InvalidArgumentError(f"meta_lr_min is the cosine schedule's final meta_lr; received meta_lr_min="
                                   f"{c.meta_lr_min!r} with meta_lr_schedule={c.meta_lr_schedule!r}.")
    if c.meta_lr_schedule == "cosine" and c.meta_lr_min > c.meta_lr:
        raise InvalidArgumentError(f"meta_lr_min={c.meta_lr_min!r} must not exceed meta_lr={c.meta_lr!r}.")
    if c.while_loop_threshold != field_default("while_loop_threshold") \
            and not takes_while_loop_threshold(c.inner_method):
        raise InvalidArgumentError(
            f"while_loop_threshold is a setting of the inner methods that unroll their loop below it ('Simple', "
            f"'ANIL': the MAML family); inner_method={c.inner_method!r} always runs one tf.while_loop. Received "
            f"while_loop_threshold={c.while_loop_threshold!r}: leave it at {field_default('while_loop_threshold')} "
            f"or choose inner_method 'Simple'.")
    recompute = recompute_every(c.recompute_every)
    if recompute is not None and not takes_recompute_every(c.outer_method):
        raise InvalidArgumentError(
            f"recompute_every checkpoints the trajectory that outer_method 'Reverse' or 'Simple' back-propagates "
            f"through; received recompute_every={c.recompute_every!r} with outer_method={c.outer_method!r}. Leave "
            f"it unset, or choose one of those (algorithms 'rhg', 'trhg', 'maml', 'fmaml', 'metasgd', 'mtnet').")
    if recompute is not None and c.use_warp:
        raise InvalidArgumentError(
            f"recompute_every={c.recompute_every!r} cannot be combined with use_warp: WarpGrad's meta-objectives "
            f"read every state of the trajectory. Leave recompute_every unset.")
    if c.proximal_lambda != 1.0 and c.inner_method != "Proximal":
        raise InvalidArgumentError(
            f"proximal_lambda is iMAML's setting; it needs inner_method='Proximal' (algorithm 'imaml'); received "
            f"proximal_lambda={c.proximal_lambda!r} with inner_method={c.inner_method!r}.")
    if any((c.learn_alpha, c.learn_alpha_itr, c.learn_st)) and c.inner_method != "Aggr":
        raise InvalidArgumentError(
            "learn_alpha, learn_alpha_itr and learn_st are BDA settings; they need inner_method='Aggr' "
            f"(algorithm 'bda'); received inner_method={c.inner_method!r}."
        )
    if c.method == "MetaFeat" and (c.first_order or c.use_t or c.use_mask or c.use_warp):
        raise InvalidArgumentError(
            "first_order, use_t, use_mask and use_warp apply to the MetaInit family (MAML, MT-net, WarpGrad); "
            f"received method={c.method!r}."
        )
    if c.name is not None and (not c.name or os.sep in c.name):
        raise InvalidArgumentError(f"name must be a non-empty directory name without {os.sep!r}; "
                                   f"received {c.name!r}.")
    return c


__all__ = ["validate", "inner_optimizer_names", "outer_optimizer_names", "takes_while_loop_threshold"]
