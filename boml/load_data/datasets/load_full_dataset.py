"""The original BOML's import path of the real-data loaders, kept for compatibility.

The loaders live in one module per dataset: :mod:`~boml.load_data.datasets.omniglot`,
:mod:`~boml.load_data.datasets.mini_imagenet` and :mod:`~boml.load_data.datasets.mnist`; the class
splits in :mod:`~boml.load_data.datasets.splits`, archive reading and the cache in
:mod:`~boml.load_data.datasets.archives`, downloads in :mod:`~boml.load_data.datasets.downloads`.
"""
from boml.load_data.datasets.downloads import download_file
from boml.load_data.datasets.mini_imagenet import ImageNetMetaDataset, meta_mini_imagenet
from boml.load_data.datasets.mnist import mnist, redivide_data
from boml.load_data.datasets.omniglot import OmniglotMetaDataset, decode_omniglot_png, meta_omniglot
from boml.load_data.datasets.splits import OMNIGLOT_N_SPLITS

__all__ = ["OmniglotMetaDataset", "ImageNetMetaDataset", "meta_omniglot", "meta_mini_imagenet", "mnist",
           "redivide_data", "download_file", "decode_omniglot_png", "OMNIGLOT_N_SPLITS"]
