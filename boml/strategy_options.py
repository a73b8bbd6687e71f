"""Frozen option records of the strategies, built from the keywords a strategy receives.

Every lower and upper strategy declares its options as a frozen dataclass
deriving from ``StrategyOptions``; ``from_options`` builds it from keyword
arguments and refuses the ones the strategy does not take, so a misspelt or
misplaced setting is an error, never silently dropped::

    @dataclasses.dataclass(frozen=True)
    class DartsOptions(StrategyOptions):
        epsilon: float = 0.01

    DartsOptions.from_options("Darts", {"epsilon": 0.1})     # DartsOptions(epsilon=0.1)
    DartsOptions.from_options("Darts", {"epsilom": 0.1})     # UnknownOptionError listing 'epsilon'
"""
import dataclasses
import numbers

from boml.errors import UnknownOptionError

__all__ = ["StrategyOptions"]


def _is_default(value, default):
    if value is default:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return isinstance(value, bool) and isinstance(default, bool) and value == default
    if isinstance(value, numbers.Number) and isinstance(default, numbers.Number):
        return value == default
    if isinstance(value, str) and isinstance(default, str):
        return value == default
    return False


@dataclasses.dataclass(frozen=True)
class StrategyOptions:
    """Base of the option records (no fields)."""

    @classmethod
    def names(cls):
        """The option names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_options(cls, owner, options, shared_defaults=None):
        """Builds the record from keyword arguments.

        Args:
            owner: the strategy's name, used in error messages.
            options: dict of keyword arguments.
            shared_defaults: keywords of a facade signature shared by several
                strategies, with their defaults: such a keyword that this strategy
                does not take is accepted only at its default value (it then means
                "not set").

        Returns:
            The frozen record (after ``validate``).

        Raises:
            UnknownOptionError: a keyword is not an option of this strategy.
            InvalidArgumentError: ``validate`` refused a value.
        """
        names = cls.names()
        shared_defaults = shared_defaults or {}
        kept, unknown = {}, []
        for key, value in options.items():
            if key in names:
                kept[key] = value
            elif key in shared_defaults and _is_default(value, shared_defaults[key]):
                continue
            else:
                unknown.append(key)
        if unknown:
            raise UnknownOptionError(
                f"{owner} does not take the option(s) {sorted(unknown)} (received "
                f"{ {k: options[k] for k in sorted(unknown)} }). Its options are {names or 'none'}. Check the "
                f"spelling, or choose the strategy that uses the option."
            )
        record = cls(**kept)
        record.validate(owner)
        return record

    def validate(self, owner):
        """Checks the values; subclasses raise ``InvalidArgumentError`` for a bad one."""
