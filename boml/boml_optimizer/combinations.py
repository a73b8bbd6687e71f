"""The one table of allowed (method, inner_method, outer_method) combinations."""
from boml.errors import InvalidCombinationError, InvalidArgumentError

METHODS = ("MetaInit", "MetaFeat")

ALLOWED_COMBINATIONS = {
    "MetaInit": {"Simple": ["Simple", "Reptile"]},
    "MetaFeat": {"Trad": ["Reverse", "Implicit", "Darts", "Forward"], "Aggr": ["Reverse", "Darts", "Forward"]},
}


def allowed_triples():
    """All allowed ``(method, inner_method, outer_method)`` triples, in table order."""
    return [(m, i, o) for m, inner in ALLOWED_COMBINATIONS.items() for i, outers in inner.items() for o in outers]


def allow_combination(method, inner_method, outer_method):
    """Allows a new combination, e.g. for a user-registered strategy."""
    if method not in ALLOWED_COMBINATIONS:
        raise InvalidArgumentError(f"method must be one of {list(ALLOWED_COMBINATIONS)}; received {method!r}.")
    outers = ALLOWED_COMBINATIONS[method].setdefault(inner_method, [])
    if outer_method not in outers:
        outers.append(outer_method)


def check_combination(method, inner_method, outer_method):
    """Raises ``InvalidCombinationError`` unless the triple is in the table."""
    table = "; ".join(f"{m}/{i}/{o}" for m, i, o in allowed_triples())
    if method not in ALLOWED_COMBINATIONS:
        raise InvalidCombinationError(
            f"Unknown method {method!r}; allowed methods are {list(ALLOWED_COMBINATIONS)}. "
            f"Allowed method/inner_method/outer_method combinations: {table}."
        )
    inner = ALLOWED_COMBINATIONS[method]
    if inner_method not in inner or outer_method not in inner[inner_method]:
        raise InvalidCombinationError(
            f"The combination method={method!r}, inner_method={inner_method!r}, outer_method={outer_method!r} is "
            f"not allowed. Allowed combinations: {table}. To use a strategy of your own, register it with "
            f"boml.extension.register_lower_iter/register_upper_iter and call "
            f"boml.boml_optimizer.allow_combination(method, inner_method, outer_method)."
        )
