"""How boml guarantees graph mode.

Decision: importing boml changes no global TensorFlow state. Every graph-building
entry point calls ``check_graph_mode``, which raises ``GraphModeError`` with the
fix when TensorFlow executes eagerly. Build boml graphs either after
``tf.compat.v1.disable_eager_execution()`` or inside ``with tf.Graph().as_default():``.
boml needs TensorFlow 2 control flow (the lower-level dynamics are
``tf.while_loop``s that are differentiated): if a script called
``tf.compat.v1.disable_v2_behavior()`` (the usual TF1 porting idiom), boml turns
v2 control flow and resource variables back on, with a warning.
"""
import warnings

import tensorflow.compat.v1 as tf
from tensorflow.python.ops import control_flow_util as _control_flow_util

from boml.errors import GraphModeError


def check_graph_mode(what="boml"):
    """Raises ``GraphModeError`` if TensorFlow is executing eagerly."""
    if tf.executing_eagerly():
        raise GraphModeError(
            f"{what} builds a static TensorFlow graph, but TensorFlow is executing eagerly. Call "
            f"tf.compat.v1.disable_eager_execution() at the start of the script, or build inside "
            f"'with tf.Graph().as_default():'."
        )
    if not _control_flow_util.ENABLE_CONTROL_FLOW_V2 or not tf.resource_variables_enabled():
        warnings.warn(
            "boml needs TensorFlow 2 control flow and resource variables; re-enabling them (they were turned off, "
            "probably by tf.compat.v1.disable_v2_behavior()). Create variables after this point.",
            RuntimeWarning, stacklevel=3)
        tf.enable_control_flow_v2()
        tf.enable_resource_variables()
