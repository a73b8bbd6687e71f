"""The JSON files of a run: ``config.json``, ``results.json``, ``evaluation.json``."""
import json
import os
from typing import Any, Dict

import numpy as np

from boml.errors import DataNotFoundError

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
EVALUATION_FILE = "evaluation.json"


def write_json(path: str, obj) -> None:
    """Writes ``obj`` as indented JSON, atomically (numpy scalars and arrays become numbers and lists)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(obj, handle, indent=2, default=_json_default)
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def read_json(run_dir: str, name: str, what: str) -> Dict[str, Any]:
    """Reads ``run_dir/name``.

    Raises:
        DataNotFoundError: the file does not exist (``what`` says which command writes it).
    """
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        raise DataNotFoundError(f"{run_dir} has no {name}; give the directory of {what}.")
    with open(path) as handle:
        return json.load(handle)


def read_results(run_dir: str) -> Dict[str, Any]:
    """The ``results.json`` of a run (written at the end, and when a run is interrupted).

    Raises:
        DataNotFoundError: the run has no ``results.json``.
    """
    return read_json(run_dir, RESULTS_FILE, "a `boml train` run that finished or was interrupted")


__all__ = ["CONFIG_FILE", "RESULTS_FILE", "EVALUATION_FILE", "write_json", "read_json", "read_results"]
