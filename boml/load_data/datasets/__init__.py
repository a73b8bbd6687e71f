"""Numpy-only datasets, episode sampling and loaders of boml (never imports TensorFlow)."""
from boml.load_data.datasets.dl_utils import (
    as_list,
    datasets_folder,
    get_rand_state,
    maybe_call,
    merge_dicts,
    to_one_hot_enc,
)
from boml.load_data.datasets.structures import (
    BatchQueueMock,
    ClassMetaDataset,
    Dataset,
    Datasets,
    MetaDataset,
)
from boml.load_data.datasets.synthetic import SyntheticMetaDataset, meta_synthetic
from boml.load_data.datasets.downloads import default_datasets_folder, download_file, fetch, locate_dataset
from boml.load_data.datasets.mini_imagenet import ImageNetMetaDataset, meta_mini_imagenet
from boml.load_data.datasets.mnist import mnist, redivide_data
from boml.load_data.datasets.omniglot import OmniglotMetaDataset, meta_omniglot

__all__ = [
    "BatchQueueMock",
    "ClassMetaDataset",
    "ImageNetMetaDataset",
    "OmniglotMetaDataset",
    "Dataset",
    "Datasets",
    "MetaDataset",
    "SyntheticMetaDataset",
    "as_list",
    "datasets_folder",
    "default_datasets_folder",
    "download_file",
    "fetch",
    "get_rand_state",
    "locate_dataset",
    "maybe_call",
    "merge_dicts",
    "meta_mini_imagenet",
    "meta_omniglot",
    "meta_synthetic",
    "mnist",
    "redivide_data",
    "to_one_hot_enc",
]
