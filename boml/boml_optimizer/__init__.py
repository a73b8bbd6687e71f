"""The ``BOMLOptimizer`` facade and the table of allowed combinations."""
from boml.boml_optimizer.combinations import ALLOWED_COMBINATIONS, allow_combination, allowed_triples
from boml.boml_optimizer.optimizer import BOMLOptimizer

__all__ = ["BOMLOptimizer", "ALLOWED_COMBINATIONS", "allow_combination", "allowed_triples"]
