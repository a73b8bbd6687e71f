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
from boml.load_data.datasets.load_full_dataset import (
    ImageNetMetaDataset,
    OmniglotMetaDataset,
    download_file,
    meta_mini_imagenet,
    meta_omniglot,
    mnist,
    redivide_data,
)

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
    "download_file",
    "get_rand_state",
    "maybe_call",
    "merge_dicts",
    "meta_mini_imagenet",
    "meta_omniglot",
    "meta_synthetic",
    "mnist",
    "redivide_data",
    "to_one_hot_enc",
]
