"""The standard configurations (``python -m boml presets``), each with a one-line description.

The Omniglot presets are sized for 30 minutes of meta-training (``max_minutes``) on a 2-core CPU.
Each was run on the real Omniglot (the README's results table; iMAML, ANIL and MAML++ on a
shared machine). MAML trains on 5 queries per class (``train_examples_test``), which makes a
meta-iteration about twice cheaper; every evaluation uses ``examples_test`` (15) queries per class.
"""
from typing import Any, Dict

from boml.errors import UnknownNameError, describe_allowed
from boml.workflow.config import Config, field_names

_OMNIGLOT_5W1S = dict(dataset="omniglot", split="vinyals", classes=5, examples_train=1, examples_test=15)
_MAML_OMNIGLOT = dict(algorithm="maml", num_filters=32, train_examples_test=5, T=1, T_test=3, meta_lr=1e-3,
                      meta_train_iterations=60000, max_minutes=30.0, save_interval=500, val_interval=500)
_SYNTHETIC = dict(dataset="synthetic", classes=5, examples_train=1, examples_test=5, meta_batch_size=4,
                  meta_lr=1e-3, meta_train_iterations=200, num_filters=16, image_size=16, test_episodes=100,
                  val_episodes=20, val_interval=50, save_interval=100, print_interval=20)

#: Preset name -> configuration values.
PRESETS: Dict[str, Dict[str, Any]] = {
    "maml-omniglot-5w1s": dict(_OMNIGLOT_5W1S, **_MAML_OMNIGLOT, meta_batch_size=8, lr=0.4),
    "maml-omniglot-5w5s": dict(dict(_OMNIGLOT_5W1S, examples_train=5), **_MAML_OMNIGLOT, meta_batch_size=8, lr=0.4),
    "maml-omniglot-20w1s": dict(dict(_OMNIGLOT_5W1S, classes=20), **_MAML_OMNIGLOT, meta_batch_size=4, lr=0.1),
    "rhg-omniglot-5w1s": dict(
        _OMNIGLOT_5W1S, algorithm="rhg", meta_batch_size=8, T=5, T_test=20, lr=0.1, meta_lr=1e-3,
        meta_train_iterations=6000, max_minutes=30.0, save_interval=500, val_interval=500),
    "imaml-omniglot-5w1s": dict(
        _OMNIGLOT_5W1S, algorithm="imaml", num_filters=32, train_examples_test=5, meta_batch_size=8, T=10, T_test=10,
        lr=0.1, proximal_lambda=2.0, cg_max_iter=5, cg_damping=1.0, meta_lr=1e-3, meta_train_iterations=20000,
        max_minutes=30.0, save_interval=500, val_interval=500),
    "anil-omniglot-5w1s": dict(_OMNIGLOT_5W1S, **dict(_MAML_OMNIGLOT, algorithm="anil"), meta_batch_size=8, lr=0.4),
    "maml++-omniglot-5w1s": dict(_OMNIGLOT_5W1S, **dict(_MAML_OMNIGLOT, algorithm="maml++", T=2),
                                 meta_batch_size=8, lr=0.4, msl_anneal_iterations=2000, first_order_iterations=1000),
    "maml-synthetic": dict(_SYNTHETIC, algorithm="maml", T=1, lr=0.4),
    "rhg-synthetic": dict(_SYNTHETIC, algorithm="rhg", T=3, lr=0.5),
    "imaml-synthetic": dict(_SYNTHETIC, algorithm="imaml", T=5, lr=0.2, proximal_lambda=2.0, cg_max_iter=5),
    "anil-synthetic": dict(_SYNTHETIC, algorithm="anil", T=1, lr=0.4),
}

#: Preset name -> what it is for (printed by ``python -m boml presets``).
PRESET_DESCRIPTIONS: Dict[str, str] = {
    "maml-omniglot-5w1s": "MAML, Omniglot 5-way 1-shot (Vinyals split), 30 minutes on a 2-core CPU",
    "maml-omniglot-5w5s": "MAML, Omniglot 5-way 5-shot (Vinyals split), 30 minutes",
    "maml-omniglot-20w1s": "MAML, Omniglot 20-way 1-shot (Vinyals split), 30 minutes",
    "rhg-omniglot-5w1s": "RHG (reverse hypergradient, meta-learned features), Omniglot 5-way 1-shot, 30 minutes",
    "imaml-omniglot-5w1s": "iMAML (proximal inner problem, damped CG meta-gradient), Omniglot 5-way 1-shot, "
                           "30 minutes",
    "anil-omniglot-5w1s": "ANIL (head-only inner loop), Omniglot 5-way 1-shot, 30 minutes",
    "maml++-omniglot-5w1s": "MAML++ (multi-step loss, derivative-order annealing; LSLR and per-step batch norm "
                            "are flags), Omniglot 5-way 1-shot, 30 minutes",
    "maml-synthetic": "MAML on generated 16x16 episodes: needs no data, trains in about a minute",
    "rhg-synthetic": "RHG on generated 16x16 episodes: needs no data, trains in about a minute",
    "imaml-synthetic": "iMAML on generated 16x16 episodes: needs no data",
    "anil-synthetic": "ANIL on generated 16x16 episodes: needs no data",
}


def preset(preset_name: str, /, **overrides) -> Config:
    """The ``Config`` of a standard configuration, with ``overrides`` applied.

    Underscores and hyphens are interchangeable in ``preset_name``.

    Raises:
        UnknownNameError: ``preset_name`` is not in ``PRESETS``.
        InvalidArgumentError: an override is not a configuration field.
    """
    key = str(preset_name).replace("_", "-")  # maml_omniglot_5w1s == maml-omniglot-5w1s
    if key not in PRESETS:
        raise UnknownNameError(f"Unknown preset {preset_name!r}; allowed: {describe_allowed(PRESETS)}.")
    values = dict(PRESETS[key])
    values.update(overrides)
    return Config().replace(**values)


def describe_presets() -> str:
    """The text of ``python -m boml presets``: each preset, its description and its flags."""
    order = {name: k for k, name in enumerate(field_names())}
    lines = []
    for name, values in PRESETS.items():
        lines.append(f"{name}: {PRESET_DESCRIPTIONS[name]}")
        lines.append("    " + " ".join(f"--{k} {values[k]}" for k in sorted(values, key=order.get)))
    return "\n".join(lines)


__all__ = ["PRESETS", "PRESET_DESCRIPTIONS", "preset", "describe_presets"]
