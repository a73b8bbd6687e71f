"""meta_omniglot on data in the real layouts: the resized folder, its tar.gz, the official 105x105 zips.

Generated trees (tests/data_trees.py) use real alphabet and character names, so the Vinyals and Lake
splits shipped with boml apply to them. Real-data tests (``real_data``) check the full set's counts.
"""
import gzip
import io
import os
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

import data_trees
from boml.errors import DataError, DataNotFoundError, InvalidArgumentError, MissingDataError
from boml.load_data.datasets import OmniglotMetaDataset, meta_omniglot
from boml.load_data.datasets import omniglot as omniglot_module
from boml.load_data.datasets import validation
from boml.load_data.datasets.omniglot import decode_omniglot_png

SPLIT_CLASSES = {s: data_trees.omniglot_classes(vinyals_split=s) for s in ("train", "val", "test")}
ALL_CLASSES = data_trees.omniglot_classes()


def _episode_pixels(dataset, seed=3):
    episode = dataset.train.generate_datasets(rand=seed)
    return episode.train.data, episode.test.data


# ============================================================================ layouts
def test_folder_tar_and_datasets_folder_default_read_the_same_images(omniglot_tree, omniglot_tar, monkeypatch):
    kwargs = dict(std_num_classes=2, examples_train=1, examples_test=3, n_splits=(0, 5, 7, 9), rotations=None)
    by_folder = meta_omniglot(omniglot_tree, **kwargs)
    by_tar = meta_omniglot(omniglot_tar, **kwargs)
    monkeypatch.setenv("DATASETS_FOLDER", os.path.dirname(omniglot_tree))  # holds omniglot_resized/
    by_default = meta_omniglot(**kwargs)
    assert by_folder.train.characters == by_tar.train.characters == by_default.train.characters
    for a, b in zip(_episode_pixels(by_folder), _episode_pixels(by_tar)):
        np.testing.assert_array_equal(a, b)
    support, query = _episode_pixels(by_folder)
    assert support.shape == (2, 28, 28, 1) and query.shape == (6, 28, 28, 1) and support.dtype == np.float32
    assert set(np.unique(query)) == {0.0, 1.0}  # binary strokes: ink 1 on a 0 background
    assert 0.05 < query.mean() < 0.5


def test_images_are_the_drawings_with_ink_as_one(omniglot_tree):
    ds = meta_omniglot(omniglot_tree, rotations=None, n_splits=(0, 9, 9, 9))
    members = {rel.rsplit("/", 1)[0]: [] for rel, _, _ in data_trees.omniglot_members()}
    for rel, _, arr in data_trees.omniglot_members():
        members[rel.rsplit("/", 1)[0]].append(arr)
    for c, character in enumerate(ds.train.characters):
        expected = (np.stack(members[character]) == 0).astype(np.uint8) * 255
        np.testing.assert_array_equal(ds.train.load_images(c, np.arange(4))[..., 0], expected)


def test_official_105_zips_are_resized_with_lanczos(omniglot_zips, monkeypatch):
    folder, drawings = omniglot_zips
    monkeypatch.setenv("DATASETS_FOLDER", os.path.dirname(folder))  # found as <datasets>/omniglot
    ds = meta_omniglot(rotations=None, n_splits=(0, 9, 9, 9))
    assert sorted(ds.train.characters) == ALL_CLASSES  # both zips read
    for c, character in enumerate(ds.train.characters):
        originals = [arr for rel, arr in sorted(drawings.items()) if rel.startswith(character + "/")]
        expected = [255 - np.asarray(Image.fromarray(a).convert("1").resize((28, 28), Image.LANCZOS).convert("L"))
                    for a in originals]
        np.testing.assert_array_equal(ds.train.load_images(c, np.arange(4))[..., 0], np.stack(expected))


def test_one_bit_png_decodes_to_ink_255_where_the_strokes_are():
    arr = data_trees.drawing(7)
    png = data_trees.png_bytes(arr, mode="1")
    assert Image.open(io.BytesIO(png)).mode == "1"  # read naively this is a bool array
    decoded = decode_omniglot_png(png, "x.png")
    assert decoded.dtype == np.uint8 and decoded.shape == (28, 28)
    np.testing.assert_array_equal(decoded, np.where(arr == 0, 255, 0))
    gray = decode_omniglot_png(data_trees.png_bytes(arr, mode="L"), "y.png")
    np.testing.assert_array_equal(gray, decoded)  # a grayscale copy decodes the same way


def test_alphabet_subset(omniglot_tree):
    ds = meta_omniglot(omniglot_tree, alphabets="Kannada", rotations=None, n_splits=(0, 2, 2, 2))
    assert sorted(ds.train.characters) == ["Kannada/character01", "Kannada/character02"]
    assert ds.validation is None and ds.test is None


# ============================================================================ splits
def test_vinyals_split_uses_the_definitions_shipped_with_boml(omniglot_tree):
    ds = meta_omniglot(omniglot_tree, split="vinyals", rotations=None)
    assert [d.characters for d in ds] == [SPLIT_CLASSES["train"], SPLIT_CLASSES["val"], SPLIT_CLASSES["test"]]


def test_lake_split_is_background_against_evaluation(omniglot_tar):
    ds = meta_omniglot(omniglot_tar, split="lake", rotations=None)
    assert ds.train.characters == data_trees.omniglot_classes(official_set="background")
    assert ds.validation is None
    assert ds.test.characters == data_trees.omniglot_classes(official_set="evaluation")


def test_split_folder_replaces_the_shipped_definitions(omniglot_tree, tmp_path):
    custom = tmp_path / "splits"
    custom.mkdir()
    (custom / "train.json").write_text('{"background": {"Armenian": ["character01", "character02"]}}')
    (custom / "val.json").write_text('{"evaluation": {"Kannada": ["character01"]}}')
    (custom / "test.json").write_text("{}")
    ds = meta_omniglot(omniglot_tree, split="vinyals", split_folder=str(custom), rotations=None)
    assert ds.train.characters == ["Armenian/character01", "Armenian/character02"]
    assert ds.validation.characters == ["Kannada/character01"] and ds.test is None
    (custom / "test.json").unlink()
    with pytest.raises(DataNotFoundError, match="lacks test.json") as error:
        meta_omniglot(omniglot_tree, split="vinyals", split_folder=str(custom))
    assert "--split vinyals" in str(error.value)  # says what a command-line user gets
    (custom / "test.json").write_text('{"background": ["Latin"]}')
    with pytest.raises(DataError, match="torchmeta format"):
        meta_omniglot(omniglot_tree, split="vinyals", split_folder=str(custom))
    (custom / "test.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot be read as JSON"):
        meta_omniglot(omniglot_tree, split="vinyals", split_folder=str(custom))


def test_split_without_any_known_character_is_refused(tmp_path):
    root = tmp_path / "o" / "Unknown_Script" / "character01"
    root.mkdir(parents=True)
    (root / "a.png").write_bytes(data_trees.png_bytes(data_trees.drawing(1)))
    with pytest.raises(DataError, match="--split original"):
        meta_omniglot(str(tmp_path / "o"), split="vinyals")


def test_original_split_is_the_sorted_names_shuffled_by_the_seed(omniglot_tree):
    ds = meta_omniglot(omniglot_tree, n_splits=(0, 5, 7, 9), rotations=None)
    names = list(ALL_CLASSES)
    np.random.RandomState(0).shuffle(names)
    assert [d.characters for d in ds] == [names[:5], names[5:7], names[7:]]
    other = meta_omniglot(omniglot_tree, n_splits=(0, 5, 7, 9), rotations=None, _rand=4)
    assert other.train.characters != ds.train.characters
    default = meta_omniglot(omniglot_tree, rotations=None)  # 1200/1300 of 1623, scaled to 9 classes
    parts = (default.train, default.validation, default.test)
    assert [None if d is None else len(d.characters) for d in parts] == [7, None, 2]
    with pytest.raises(InvalidArgumentError, match="n_splits"):
        meta_omniglot(omniglot_tree, n_splits=(0, 5, 3, 9))
    with pytest.raises(InvalidArgumentError, match="split must be one of"):
        meta_omniglot(omniglot_tree, split="bogus")


# ============================================================================ rotations, episodes
def test_rotations_are_exact_and_labelled_with_their_angle(omniglot_tree):
    ds = meta_omniglot(omniglot_tree, n_splits=(0, 9, 9, 9))
    train = ds.train
    assert train.n_total_classes == 36
    assert train.class_names[:4] == [f"{train.characters[0]}/rot_{a}" for a in (0, 90, 180, 270)]
    base = train.load_images(0, np.arange(4))
    for r, angle in enumerate((0, 90, 180, 270)):
        np.testing.assert_array_equal(train.load_images(r, np.arange(4)), np.rot90(base, k=angle // 90, axes=(1, 2)))
    with pytest.raises(InvalidArgumentError, match="rotations"):
        meta_omniglot(omniglot_tree, rotations=(0, 45))


def test_support_and_query_never_share_a_drawing_and_only_sampled_characters_are_decoded(omniglot_tree):
    ds = meta_omniglot(omniglot_tree, std_num_classes=3, examples_train=2, examples_test=2, rotations=None,
                       n_splits=(0, 9, 9, 9), validate=False)
    episode = ds.train.generate_datasets(rand=0)
    support = {(i["name"], i["image_index"]) for i in episode.train.sample_info}
    query = {(i["name"], i["image_index"]) for i in episode.test.sample_info}
    assert len(support) == 6 and len(query) == 6 and not support & query
    np.testing.assert_array_equal(episode.test.target.sum(0), [2, 2, 2])
    assert ds.train.nbytes == 3 * 4 * 28 * 28  # lazily: only the three sampled characters, uint8


def test_meta_dataset_built_directly_from_a_folder(omniglot_tree):
    md = OmniglotMetaDataset(info={"base_folder": omniglot_tree}, rotations=None, num_classes=2, num_examples=(2, 2))
    assert md.class_names == ALL_CLASSES and md.min_class_size() == 4  # sorted when no split is given
    with pytest.raises(DataError, match="not in the data"):
        OmniglotMetaDataset(info={"base_folder": omniglot_tree, "classes": ["Zeta/character01"]})
    with pytest.raises(InvalidArgumentError, match="files= or info"):
        OmniglotMetaDataset()


# ============================================================================ missing and damaged data
def test_missing_data_names_the_places_and_the_command(empty_datasets_folder, tmp_path):
    with pytest.raises(MissingDataError) as error:
        meta_omniglot()
    message = str(error.value)
    assert os.path.join(empty_datasets_folder, "omniglot") in message and "--data_folder" in message
    assert message.endswith("python -m boml data fetch omniglot")
    with pytest.raises(MissingDataError, match="nope"):
        meta_omniglot(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="python -m boml data fetch omniglot"):
        meta_omniglot(str(tmp_path / "empty"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="neither"):
        meta_omniglot(str(tmp_path / "notes.txt"))


def test_shots_must_fit_the_smallest_character(omniglot_tree):
    with pytest.raises(DataError, match="examples_train=3 \\+ examples_test=2 = 5"):
        meta_omniglot(omniglot_tree, std_num_classes=2, examples_train=3, examples_test=2)
    with pytest.raises(InvalidArgumentError, match="examples_train must be >= 1"):
        meta_omniglot(omniglot_tree, examples_train=0)
    with pytest.raises(InvalidArgumentError, match="examples_test must be >= 0"):
        meta_omniglot(omniglot_tree, examples_train=1, examples_test=-1)


def test_empty_character_folder_is_named(omniglot_tree, tmp_path):
    os.makedirs(os.path.join(omniglot_tree, "Kannada", "character09"))
    with pytest.raises(DataError, match="Kannada/character09"):
        meta_omniglot(omniglot_tree)
    arc = str(tmp_path / "with_empty.tar.gz")
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(omniglot_tree, arcname="omniglot_resized")
    with pytest.raises(DataError, match="Kannada/character09"):  # a directory entry of the archive
        meta_omniglot(arc)


def test_damaged_image_fails_at_load_not_during_training(omniglot_tree):
    bad = os.path.join(omniglot_tree, "Kannada", "character02", sorted(
        os.listdir(os.path.join(omniglot_tree, "Kannada", "character02")))[0])
    with open(bad, "wb") as f:
        f.write(b"\x89PNG not really")
    with pytest.raises(DataError, match="character02/.*cannot be decoded"):
        meta_omniglot(omniglot_tree, split="vinyals")  # Kannada is in the *test* split
    lazy = meta_omniglot(omniglot_tree, split="vinyals", rotations=None, std_num_classes=2, examples_train=1,
                         examples_test=3, validate=False)
    with pytest.raises(DataError, match="cannot be decoded"):  # without validation: only when sampled
        lazy.test.generate_datasets(rand=0)
    with open(bad, "wb") as f:
        f.write(data_trees.png_bytes(data_trees.drawing(1, side=30)))
    with pytest.raises(DataError, match="30x30"):
        meta_omniglot(omniglot_tree)


def test_flipped_bytes_in_the_tar_gz_name_the_archive(omniglot_tar):
    data_trees.flip_middle_byte(omniglot_tar)
    with pytest.raises(DataError, match="omniglot_resized.tar.gz cannot be read: it is damaged"):
        meta_omniglot(omniglot_tar)


def test_truncated_tar_gz_and_garbage_archives_name_the_file(omniglot_tar, tmp_path):
    raw = open(omniglot_tar, "rb").read()
    with open(omniglot_tar, "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="omniglot_resized.tar.gz"):
        meta_omniglot(omniglot_tar)
    not_tar = tmp_path / "omniglot_resized.tar.gz"
    not_tar.write_bytes(gzip.compress(b"this is not a tar archive" * 40))
    with pytest.raises(DataError, match="not a readable tar archive"):
        meta_omniglot(str(not_tar))
    not_zip = tmp_path / "images_background.zip"
    not_zip.write_bytes(b"PK garbage")
    with pytest.raises(DataError, match="images_background.zip is not a readable zip archive"):
        meta_omniglot(str(not_zip))


def test_flipped_bytes_in_a_zip_member_name_the_member(omniglot_zips):
    folder, _ = omniglot_zips
    path = os.path.join(folder, "images_evaluation.zip")
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[-1]
    raw = bytearray(open(path, "rb").read())
    header_end = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[header_end + info.compress_size // 2] ^= 0xFF  # inside the compressed data of the last member
    with open(path, "wb") as f:
        f.write(bytes(raw))
    with pytest.raises(DataError, match=f"Member {info.filename} of the archive .*images_evaluation.zip is damaged"):
        meta_omniglot(folder)


# ============================================================================ validation cache
def test_validation_is_remembered_by_the_data_digest(omniglot_tar, tmp_path, monkeypatch):
    monkeypatch.setenv("BOML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(validation, "_VALIDATED", set())
    meta_omniglot(omniglot_tar)
    assert len(os.listdir(tmp_path / "cache" / "validated")) == 1

    def must_not_run(files, into):
        raise AssertionError("validated again")

    monkeypatch.setattr(validation, "_VALIDATED", set())  # as in a new process: only the marker file remains
    monkeypatch.setattr(omniglot_module, "_decode_all", must_not_run)
    meta_omniglot(omniglot_tar)
    monkeypatch.undo()
    monkeypatch.setenv("BOML_CACHE_DIR", str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    data_trees.write_omniglot_tree(str(tree))
    first = sorted(os.listdir(tree / "Angelic" / "character01"))[0]
    (tree / "Angelic" / "character01" / first).write_bytes(b"broken")  # another digest: checked again
    with pytest.raises(DataError, match="Angelic/character01/.*cannot be decoded"):
        meta_omniglot(str(tree))


# ============================================================================ real data
def test_real_omniglot_counts_and_splits(real_data):
    folder = real_data("omniglot_resized", "omniglot")
    ds = meta_omniglot(folder, std_num_classes=5, examples_train=1, examples_test=15)
    assert [len(d.characters) for d in ds] == [1200, 100, 323]
    assert [d.n_total_classes for d in ds] == [4800, 400, 1292]
    vinyals = meta_omniglot(folder, split="vinyals", rotations=None)
    assert [len(d.characters) for d in vinyals] == [1028, 172, 423]
    lake = meta_omniglot(folder, split="lake", rotations=None)
    assert len(lake.train.characters) == 964 and lake.validation is None and len(lake.test.characters) == 659
    episode = ds.train.generate_datasets(rand=0)
    assert episode.test.data.shape == (75, 28, 28, 1) and set(np.unique(episode.test.data)) <= {0.0, 1.0}
    assert 0.03 < episode.test.data.mean() < 0.2  # ~8.5% ink pixels


def test_real_official_small_zips_match_the_resized_set(real_data):
    small = real_data("omniglot_original_small")
    resized = real_data("omniglot_resized")
    zips = meta_omniglot(small, rotations=None, alphabets=["Greek"], n_splits=(0, 24, 24, 24))
    ref = meta_omniglot(resized, rotations=None, alphabets=["Greek"], n_splits=(0, 24, 24, 24))
    assert zips.train.characters == ref.train.characters
    for c in range(4):
        np.testing.assert_array_equal(zips.train.load_images(c, np.arange(20)), ref.train.load_images(c, np.arange(20)))
