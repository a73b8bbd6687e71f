"""The ``BOMLOptimizer`` facade and the table of allowed combinations (derived from the strategies)."""
from boml.boml_optimizer.combinations import allowed_triples, check_combination, feature_table
from boml.boml_optimizer.optimizer import BOMLOptimizer

__all__ = ["BOMLOptimizer", "allowed_triples", "check_combination", "feature_table"]
