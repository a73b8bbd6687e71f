"""The datasets of a run: found (or fetched with ``download=True``) through the data layer."""
from boml.errors import UnknownNameError, describe_allowed
from boml.workflow.config import DATASETS


def load_dataset(config, log=print):
    """The ``Datasets(train, validation, test)`` of ``config.dataset``.

    Omniglot and Mini-ImageNet are looked up with :func:`boml.load_data.datasets.downloads.locate_dataset`:
    ``config.data_folder`` when given, else the datasets folder (``$DATASETS_FOLDER``); with
    ``config.download`` a missing dataset is fetched there first.

    Args:
        config: a validated :class:`~boml.workflow.config.Config`.
        log: receives the data layer's progress lines (downloads).

    Returns:
        The ``Datasets`` of the run; with ``train_examples_test`` the training episodes have that many
        queries per class.

    Raises:
        DataError: the dataset cannot be found (the message ends with the command that fetches it).
        UnknownNameError: unknown dataset.
    """
    c = config
    dataset = _load(c, log)
    if c.train_examples_test is not None and c.train_examples_test != c.examples_test:
        dataset.train.num_examples = (c.classes * c.examples_train, c.classes * c.train_examples_test)
    return dataset


def _load(c, log):
    from boml.load_data import meta_mini_imagenet, meta_omniglot, meta_synthetic

    if c.dataset == "synthetic":
        side = int(c.image_size)
        return meta_synthetic(num_classes=c.classes, examples_train=c.examples_train, examples_test=c.examples_test,
                              image_shape=(side, side, 1), seed=c.seed)
    if c.dataset not in ("omniglot", "miniimagenet"):
        raise UnknownNameError(f"Unknown dataset {c.dataset!r}; allowed: {describe_allowed(DATASETS)}.")
    from boml.load_data.datasets.downloads import locate_dataset

    folder = locate_dataset(c.dataset, folder=c.data_folder, download=c.download, log=log)
    if c.dataset == "omniglot":
        return meta_omniglot(folder, std_num_classes=c.classes, examples_train=c.examples_train,
                             examples_test=c.examples_test, split=c.split)
    return meta_mini_imagenet(folder, std_num_classes=c.classes, examples_train=c.examples_train,
                              examples_test=c.examples_test)


__all__ = ["load_dataset"]
