"""Upper-level strategies (``outer_method``): Reverse, Simple, Implicit, Darts, Reptile, Forward."""
from boml.upper_iter.outer_grad import BOMLOuterGrad, UpperOptions
from boml.upper_iter.reverse import BOMLOuterGradReverse
from boml.upper_iter.simple import BOMLOuterGradSimple, SimpleOptions
from boml.upper_iter.implicit import BOMLOuterGradImplicit, ImplicitOptions, conjugate_gradient
from boml.upper_iter.darts import BOMLOuterGradDarts, DartsOptions
from boml.upper_iter.reptile import BOMLOuterGradReptile
from boml.upper_iter.forward import BOMLOuterGradForward, ForwardOptions

__all__ = ["BOMLOuterGrad", "BOMLOuterGradReverse", "BOMLOuterGradSimple", "BOMLOuterGradImplicit",
           "BOMLOuterGradDarts", "BOMLOuterGradReptile", "BOMLOuterGradForward", "conjugate_gradient",
           "UpperOptions", "SimpleOptions", "ImplicitOptions", "DartsOptions", "ForwardOptions"]
