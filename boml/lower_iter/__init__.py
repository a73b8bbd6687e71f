"""Lower-level strategies (``inner_method``): Trad, Simple, Aggr, Proximal, ANIL; the per-task dynamics contract."""
from boml.lower_iter.adapted_model import AdaptedModel
from boml.lower_iter.dynamics import StepHyperparameters, TaskDynamics, Trajectory
from boml.lower_iter.inner_grad import BOMLInnerGrad, BOMLInnerGradTrad, LowerOptions, inner_gradient
from boml.lower_iter.simple import BOMLInnerGradSimple
from boml.lower_iter.aggr import AggrOptions, BOMLInnerGradAggr
from boml.lower_iter.proximal import BOMLInnerGradProximal, ProximalOptions
from boml.lower_iter.anil import AnilOptions, BOMLInnerGradANIL

__all__ = ["BOMLInnerGrad", "BOMLInnerGradTrad", "BOMLInnerGradSimple", "BOMLInnerGradAggr", "LowerOptions",
           "AggrOptions", "BOMLInnerGradProximal", "ProximalOptions", "BOMLInnerGradANIL", "AnilOptions",
           "AdaptedModel", "TaskDynamics", "Trajectory", "StepHyperparameters", "inner_gradient"]
