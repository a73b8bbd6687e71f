"""Sessions of the in-process numeric tests: TensorFlow's executor without grappler's graph rewrites.

Grappler optimizes each new graph at its first ``session.run``; for the small float64 graphs of the
hypergradient tests that is most of a test's time (a vectorized MAML comparison ran in 2.9 s instead of
11.4 s, with the same meta-gradients to the last digits). The rewrites are TensorFlow's, not boml's, and
may move results by a rounding error, so only the tests that compare numbers computed in the same
process use these sessions: the training, command-line, checkpoint and example tests, and the float32
agreement of the vectorized path, run with TensorFlow's default session as users do.
"""
import tensorflow.compat.v1 as tf


def numeric_config(base=None):
    """A copy of ``base`` (default: an empty ``ConfigProto``) with grappler's meta optimizer disabled."""
    config = tf.ConfigProto()
    if base is not None:
        config.CopyFrom(base)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    return config


def numeric_session(graph=None, config=None):
    """``tf.Session(graph=graph, config=numeric_config(config))``."""
    return tf.Session(graph=graph, config=numeric_config(config))
