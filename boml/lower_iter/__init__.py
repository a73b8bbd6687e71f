"""Lower-level strategies (``inner_method``): Trad, Simple, Aggr."""
from boml.lower_iter.inner_grad import BOMLInnerGrad, BOMLInnerGradTrad, Trajectory
from boml.lower_iter.simple import BOMLInnerGradSimple
from boml.lower_iter.aggr import BOMLInnerGradAggr

__all__ = ["BOMLInnerGrad", "BOMLInnerGradTrad", "BOMLInnerGradSimple", "BOMLInnerGradAggr", "Trajectory"]
