"""Upper-level strategies (``outer_method``): Reverse, Simple, Implicit, Darts, Reptile, Forward, MAML++."""
from boml.upper_iter.outer_grad import BOMLOuterGrad, RecomputeOptions, UpperOptions
from boml.upper_iter.reverse import BOMLOuterGradReverse
from boml.upper_iter.simple import BOMLOuterGradSimple, SimpleOptions
from boml.upper_iter.implicit import BOMLOuterGradImplicit, ImplicitOptions, conjugate_gradient
from boml.upper_iter.solvers import fixed_point_iteration, neumann_series, solve_cg
from boml.upper_iter.darts import BOMLOuterGradDarts, DartsOptions
from boml.upper_iter.reptile import BOMLOuterGradReptile
from boml.upper_iter.forward import BOMLOuterGradForward, ForwardOptions
from boml.upper_iter.maml_plus_plus import BOMLOuterGradMAMLPlusPlus, MAMLPlusPlusOptions

__all__ = ["BOMLOuterGrad", "BOMLOuterGradReverse", "BOMLOuterGradSimple", "BOMLOuterGradImplicit",
           "BOMLOuterGradDarts", "BOMLOuterGradReptile", "BOMLOuterGradForward", "conjugate_gradient",
           "solve_cg", "neumann_series", "fixed_point_iteration",
           "BOMLOuterGradMAMLPlusPlus", "MAMLPlusPlusOptions",
           "UpperOptions", "RecomputeOptions", "SimpleOptions", "ImplicitOptions", "DartsOptions", "ForwardOptions"]
