"""Upper-level strategies (``outer_method``): Reverse, Simple, Implicit, Darts, Forward."""
from boml.upper_iter.outer_grad import BOMLOuterGrad
from boml.upper_iter.reverse import BOMLOuterGradReverse
from boml.upper_iter.simple import BOMLOuterGradSimple
from boml.upper_iter.implicit import BOMLOuterGradImplicit, conjugate_gradient
from boml.upper_iter.darts import BOMLOuterGradDarts
from boml.upper_iter.reptile import BOMLOuterGradReptile
from boml.upper_iter.forward import BOMLOuterGradForward

__all__ = ["BOMLOuterGrad", "BOMLOuterGradReverse", "BOMLOuterGradSimple", "BOMLOuterGradImplicit",
           "BOMLOuterGradDarts", "BOMLOuterGradReptile", "BOMLOuterGradForward", "conjugate_gradient"]
