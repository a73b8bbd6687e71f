"""Lower-level strategies (``inner_method``): Trad, Simple, Aggr, and the per-task dynamics contract."""
from boml.lower_iter.adapted_model import AdaptedModel
from boml.lower_iter.dynamics import StepHyperparameters, TaskDynamics, Trajectory
from boml.lower_iter.inner_grad import BOMLInnerGrad, BOMLInnerGradTrad, LowerOptions, inner_gradient
from boml.lower_iter.simple import BOMLInnerGradSimple
from boml.lower_iter.aggr import AggrOptions, BOMLInnerGradAggr

__all__ = ["BOMLInnerGrad", "BOMLInnerGradTrad", "BOMLInnerGradSimple", "BOMLInnerGradAggr", "LowerOptions",
           "AggrOptions", "AdaptedModel", "TaskDynamics", "Trajectory", "StepHyperparameters", "inner_gradient"]
