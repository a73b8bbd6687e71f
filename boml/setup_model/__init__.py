"""Networks for boml: meta-learners, base learners and their building blocks.

Registered network names (see :func:`boml.extension.register_network`):
``"OmniglotMetaInitV1"``, ``"MiniMetaInitV1"``, ``"MetaInitV1"`` (channels from
the input), ``"OmniglotMetaFeatV1"``, ``"MiniMetaFeatV1"`` and ``"MetaFeatV1"`` (Conv-4 networks,
``meta_model="V1"``); ``"OmniglotMetaInitV2"``, ``"MiniMetaInitV2"``, ``"MetaInitV2"``,
``"OmniglotMetaFeatV2"``, ``"MiniMetaFeatV2"`` and ``"MetaFeatV2"`` (residual networks,
``meta_model="V2"``).
"""
from boml import extension as _extension
from boml.setup_model import network_utils
from boml.setup_model.feedforward import BOMLNetFeedForward
from boml.setup_model.meta_feat_v1 import BOMLNetMetaFeatV1, BOMLNetMiniMetaFeatV1, BOMLNetOmniglotMetaFeatV1
from boml.setup_model.meta_feat_v2 import BOMLNetMetaFeatV2, BOMLNetMiniMetaFeatV2, BOMLNetOmniglotMetaFeatV2
from boml.setup_model.meta_init_v1 import BOMLNetMetaInitV1, BOMLNetMiniMetaInitV1, BOMLNetOmniglotMetaInitV1
from boml.setup_model.meta_init_v2 import BOMLNetMetaInitV2, BOMLNetMiniMetaInitV2, BOMLNetOmniglotMetaInitV2
from boml.setup_model.network import BOMLNet

__all__ = [
    "BOMLNet",
    "BOMLNetFeedForward",
    "BOMLNetMetaInitV1",
    "BOMLNetOmniglotMetaInitV1",
    "BOMLNetMiniMetaInitV1",
    "BOMLNetMetaFeatV1",
    "BOMLNetOmniglotMetaFeatV1",
    "BOMLNetMiniMetaFeatV1",
    "BOMLNetMetaInitV2",
    "BOMLNetOmniglotMetaInitV2",
    "BOMLNetMiniMetaInitV2",
    "BOMLNetMetaFeatV2",
    "BOMLNetOmniglotMetaFeatV2",
    "BOMLNetMiniMetaFeatV2",
    "network_utils",
]

# overwrite=True keeps the import idempotent (module reloads re-register the same objects).
for _name, _network in (
    ("OmniglotMetaInitV1", BOMLNetOmniglotMetaInitV1),
    ("MiniMetaInitV1", BOMLNetMiniMetaInitV1),
    ("MetaInitV1", BOMLNetMetaInitV1),
    ("OmniglotMetaFeatV1", BOMLNetOmniglotMetaFeatV1),
    ("MiniMetaFeatV1", BOMLNetMiniMetaFeatV1),
    ("MetaFeatV1", BOMLNetMetaFeatV1),
    ("OmniglotMetaInitV2", BOMLNetOmniglotMetaInitV2),
    ("MiniMetaInitV2", BOMLNetMiniMetaInitV2),
    ("MetaInitV2", BOMLNetMetaInitV2),
    ("OmniglotMetaFeatV2", BOMLNetOmniglotMetaFeatV2),
    ("MiniMetaFeatV2", BOMLNetMiniMetaFeatV2),
    ("MetaFeatV2", BOMLNetMetaFeatV2),
):
    _extension.register_network(_name, overwrite=True)(_network)
del _name, _network
