"""The table of allowed (method, inner_method, outer_method) combinations, derived from the strategies.

Nothing here is stored: a lower strategy declares the ``methods`` it serves
(``"MetaInit"`` or ``"MetaFeat"``) and an upper strategy the ``inner_methods``
it is defined for (a lower strategy may also list ``outer_methods``). A user's
registered strategy joins the table by declaring the same attributes. The
finer limits (inner optimizers, learned step sizes, MT-net mask) are declared
by the upper strategy and checked when the problem is built
(``BOMLOuterGrad.check_lower``); ``feature_table`` lists them.
"""
from boml import extension
from boml.errors import InvalidCombinationError

__all__ = ["METHODS", "allowed_triples", "check_combination", "feature_table"]

METHODS = ("MetaInit", "MetaFeat")


def _pairs():
    for inner_name in extension.LOWER_ITERS.names():
        lower = extension.LOWER_ITERS.get(inner_name)
        for outer_name in extension.UPPER_ITERS.names():
            upper = extension.UPPER_ITERS.get(outer_name)
            if inner_name in getattr(upper, "inner_methods", ()) or outer_name in getattr(lower, "outer_methods", ()):
                for method in getattr(lower, "methods", ()):
                    yield method, inner_name, outer_name


def allowed_triples():
    """All allowed ``(method, inner_method, outer_method)`` triples, sorted by method then names."""
    return sorted(_pairs(), key=lambda triple: (METHODS.index(triple[0]) if triple[0] in METHODS else 99,) + triple)


def feature_table():
    """``{outer_method: {"inner_optimizers", "learned_lr", "mask"}}`` as declared by each upper strategy."""
    table = {}
    for name in extension.UPPER_ITERS.names():
        upper = extension.UPPER_ITERS.get(name)
        optimizers = getattr(upper, "inner_optimizers", None)
        table[name] = {"inner_optimizers": "any" if optimizers is None else list(optimizers),
                       "learned_lr": getattr(upper, "supports_learned_lr", True),
                       "mask": getattr(upper, "supports_mask", True)}
    return table


def check_combination(method, inner_method, outer_method):
    """Raises ``InvalidCombinationError`` unless the triple is allowed."""
    triples = allowed_triples()
    table = "; ".join(f"{m}/{i}/{o}" for m, i, o in triples)
    if method not in METHODS:
        raise InvalidCombinationError(
            f"Unknown method {method!r}; allowed methods are {list(METHODS)}. "
            f"Allowed method/inner_method/outer_method combinations: {table}."
        )
    if (method, inner_method, outer_method) not in triples:
        raise InvalidCombinationError(
            f"The combination method={method!r}, inner_method={inner_method!r}, outer_method={outer_method!r} is "
            f"not allowed. Allowed combinations: {table}. A registered strategy joins the table by declaring "
            f"it: the upper strategy's inner_methods (or the lower strategy's outer_methods) and the lower "
            f"strategy's methods."
        )
