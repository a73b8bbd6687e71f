"""boml: bilevel optimization for meta-learning on TensorFlow's graph mode."""
