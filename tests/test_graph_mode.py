"""boml.graph_mode: a script that called tf.disable_v2_behavior() gets control flow v2 and resource variables
back, with a warning."""
import subprocess
import sys


def test_disable_v2_behavior_is_undone_with_a_warning():
    code = ("import warnings, tensorflow.compat.v1 as tf\n"
            "tf.disable_v2_behavior()\n"
            "import boml\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    boml.graph_mode.check_graph_mode('test')\n"
            "from tensorflow.python.ops import control_flow_util as c\n"
            "print('WARNED', any('re-enabling' in str(w.message) for w in caught), c.ENABLE_CONTROL_FLOW_V2,\n"
            "      tf.resource_variables_enabled())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "WARNED True True True" in result.stdout, result.stderr[-2000:]
