"""`scaling data prepare`: building a dataset into a tfds data_dir, the checks that keep its labels right, and the
summary of what was built.

ImageNet is built by tfds' own builders from the manually downloaded tars. tfds labels the validation images by
position: the k-th name of ILSVRC2012_img_val.tar in sorted order gets line k of tfds' list of 50,000 validation
labels. That is right only when the names are ILSVRC2012_val_00000001.JPEG, ...00000002.JPEG, ... unbroken from
the first, so the tar's names are checked before anything is built (`check_validation_tar`): a partial tar whose
names run from the first builds (with a warning), any other incomplete one is refused. The same check reads the
file names of an already prepared validation split (`prepared_validation`, shown by `scaling data describe`).

A dataset already prepared as tfrecord (which streams only in file order) is converted in place when `prepare`
is asked for array_record (its default): each tfrecord shard is copied record by record into an array_record
shard beside it (written under a temporary name, then renamed, so a killed conversion resumes with the shards it
had not finished), and dataset_info.json then names array_record as the dataset's format (tfrecord as an
alternative: the files stay, and may be deleted), so tfds reads the new shards, by index too. That is how a
tfrecord ImageNet becomes streamable (data.pipeline='stream').

Files tfds fetches from the network while building from the tars (the subset lists of imagenet2012_subset, the
ReaL labels) are looked for first; without them and without network the build stops at once, saying which file
to put where (tfds itself would retry the download for minutes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import socket
import sys
import tarfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from scaling.data.cache import format_bytes
from scaling.data.catalog import CATALOG, IMAGENET_TARS, IMAGENET_URL, Entry, base_name, how_to_prepare
from scaling.data.progress import Progress
from scaling.data.source import (
    EMBEDDED_DATASETS,
    class_names,
    embedded_builder,
    feature_keys,
    image_sizes,
    is_random_access,
    prepare_embedded,
    read_texts,
    tfds_builder,
)
from scaling.errors import DataError

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

VALIDATION_TAR = IMAGENET_TARS[1]
VALIDATION_IMAGES = 50_000
_VALIDATION_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")
_SIZE_SAMPLE = 256  # images per split whose sizes the summary reports
_NETWORK_TIMEOUT_S = 3.0


def validation_name(number: int) -> str:
    """The file name of ImageNet validation image `number` (1..50,000)."""
    return f"ILSVRC2012_val_{number:08d}.JPEG"


@dataclasses.dataclass(frozen=True)
class ValidationNames:
    """What the names of a set of ImageNet validation images say about the labels tfds gives them."""

    count: int
    problem: str | None  # why tfds would mislabel them; None when the names run unbroken from the first

    @property
    def complete(self) -> bool:
        return self.problem is None and self.count == VALIDATION_IMAGES

    def describe(self) -> str:
        """One line: complete, partial with right labels, or wrong labels and why."""
        if self.problem:
            return (f"{self.count:,} images, {self.problem}: tfds labels them by position, so images after it have "
                    f"wrong labels; prepare it again from a complete {VALIDATION_TAR}")
        if self.complete:
            return f"{self.count:,} images (complete)"
        return (f"{self.count:,} of {VALIDATION_IMAGES:,} images: a partial set (its labels are right: the names run "
                f"unbroken from {validation_name(1)})")


def check_validation_names(names: Iterable[str]) -> ValidationNames:
    """Whether tfds labels these validation file names right: they must be ILSVRC2012_val_00000001.JPEG ... unbroken
    from the first (tfds gives the k-th name in sorted order the k-th label of its list)."""
    names = sorted(names)
    count, numbers = len(names), []
    for name in names:
        match = _VALIDATION_NAME.fullmatch(name)
        if not match:
            return ValidationNames(count, f"{name!r} is not an ImageNet validation image name")
        numbers.append(int(match.group(1)))
    for expected, (number, name) in enumerate(zip(numbers, names), start=1):
        if number == expected:
            continue
        if number < expected:
            return ValidationNames(count, f"{name} appears twice" if number else f"{name} is not an ImageNet image")
        if number > VALIDATION_IMAGES:
            return ValidationNames(count, f"{name} is not an ImageNet image (they run to {VALIDATION_IMAGES:,})")
        return ValidationNames(count, f"{validation_name(expected)} is missing")
    return ValidationNames(count, None)


def check_validation_tar(path: Path) -> ValidationNames:
    """The validation tar's names checked (headers only), or a DataError saying why tfds would mislabel it."""
    with tarfile.open(path, "r:") as archive:
        names = archive.getnames()  # the names tfds pairs with its labels
    checked = check_validation_names(names)
    if checked.problem:
        raise DataError(
            f"{path} would be built with wrong labels: {checked.problem} ({checked.count:,} images in the tar). tfds "
            f"labels the validation images by position (the k-th name in sorted order gets line k of its list of "
            f"{VALIDATION_IMAGES:,} labels), so every image after the gap would get another image's label. Put the "
            f"complete {VALIDATION_TAR} ({VALIDATION_IMAGES:,} images, from {IMAGENET_URL}) in {path.parent}/, or a "
            f"part of it whose names run unbroken from {validation_name(1)}, and prepare again."
        )
    return checked


def prepared_validation(builder: tfds.core.DatasetBuilder) -> ValidationNames | None:
    """The validation check of a prepared ImageNet dataset whose labels tfds gives by position (None for others):
    from its split size when complete, else from the file names it recorded."""
    entry = CATALOG.get(base_name(builder.name))
    if not (entry and entry.labels_by_position) or "validation" not in builder.info.splits:
        return None
    count = int(builder.info.splits["validation"].num_examples)
    if count == VALIDATION_IMAGES:  # names are 1..50,000 at most: all of them
        return ValidationNames(count, None)
    if "file_name" not in builder.info.features:
        return None
    return check_validation_names(read_texts(builder, "validation", "file_name"))


def training_synsets(path: Path) -> list[str]:
    """The synsets of ILSVRC2012_img_train.tar (one inner tar `nXXXXXXXX.tar` each), from its headers."""
    with tarfile.open(path, "r:") as archive:
        return sorted(name.removesuffix(".tar") for name in archive.getnames() if name.endswith(".tar"))


# --------------------------------------------------------------------------- network files


def _reachable(host: str, port: int = 443, timeout: float = _NETWORK_TIMEOUT_S) -> bool:
    """Whether a TCP connection to host:port opens within `timeout` seconds (name lookup included)."""
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _network_file(name: str, builder: tfds.core.DatasetBuilder, entry: Entry | None) -> str | None:
    if not entry or not entry.downloads:
        return None
    config = builder.builder_config.name if builder.builder_config else ""
    return entry.downloads.get(config) or entry.downloads.get("")


def check_network_files(name: str, builder: tfds.core.DatasetBuilder, manual_dir: Path, download_dir: Path) -> None:
    """Files tfds will fetch while building `name` are in manual_dir or already downloaded, or the network is
    there; else a DataError naming the URL and where to put the file (at once, not after minutes of retries)."""
    url = _network_file(name, builder, CATALOG.get(base_name(name)))
    if url is None:
        return
    info = (builder.url_infos or {}).get(url)
    filename = (info.filename if info else None) or os.path.basename(urlparse(url).path)
    if (manual_dir / filename).exists():
        return
    if info and info.checksum:
        from tensorflow_datasets.core.download import resource

        if (download_dir / resource.get_dl_fname(url, info.checksum)).exists():
            return
    host = urlparse(url).hostname or ""
    if _reachable(host):
        return
    raise DataError(
        f"building {name} needs {url} (tfds downloads it while building), but {host} cannot be reached from here. "
        f"Download it on a machine with network (e.g. `curl -L -o {filename} {url}`), put it in "
        f"{manual_dir}/{filename} (next to the ImageNet tars; tfds checks its checksum) and prepare again."
    )


# --------------------------------------------------------------------------- building


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """tfds' progress bars, banners (on stdout) and info/warning logs silenced unless `verbose`."""
    import tensorflow_datasets as tfds

    if verbose:
        tfds.display_progress_bar(True)
        yield
        return
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    tfds.disable_progress_bar()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        absl_logging.set_verbosity(level)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A dataset `scaling data prepare` built (or found built), with what the checks found."""

    name: str
    builder: tfds.core.DatasetBuilder
    validation: ValidationNames | None  # ImageNet validation names checked; None when not labelled by position
    synsets: list[str] | None  # synsets with training images (from the training tar), when known


def prepare(name: str, data_dir: str, file_format: str = "array_record") -> Prepared:
    """Builds `name` into `data_dir` (checked first: manual tars, validation names, network files); a DataError
    says what is missing or wrong before anything is built. tfds reports its progress (see `quiet`)."""
    if name in EMBEDDED_DATASETS:
        prepare_embedded(name, data_dir, file_format)
        if file_format == "array_record":
            convert_to_array_record(embedded_builder(name, data_dir))
        return Prepared(name, embedded_builder(name, data_dir), None, None)
    entry = CATALOG.get(base_name(name))
    download_dir = Path(data_dir) / "downloads"
    manual_dir = download_dir / "manual"
    builder = tfds_builder(name, data_dir)
    train_tar = manual_dir / IMAGENET_TARS[0]
    synsets = training_synsets(train_tar) if entry and IMAGENET_TARS[0] in entry.manual_files and train_tar.exists() \
        else None
    if builder.is_prepared():
        validation = prepared_validation(builder)
        if validation and validation.problem:
            raise DataError(
                f"{name} is already prepared in {builder.data_dir} from an incomplete {VALIDATION_TAR}: "
                f"{validation.problem} ({validation.count:,} images), so tfds gave the images after it wrong labels. "
                f"Delete {builder.data_dir}, put the complete tar in {manual_dir}/ and prepare again."
            )
        if file_format == "array_record":
            convert_to_array_record(builder)
        return Prepared(name, tfds_builder(name, data_dir), validation, synsets)
    missing = [file for file in (entry.manual_files if entry else ()) if not (manual_dir / file).exists()]
    if missing:
        raise DataError(f"missing {', '.join(missing)} in {manual_dir}. {how_to_prepare(name, data_dir)}")
    validation = None
    if entry and entry.labels_by_position and VALIDATION_TAR in entry.manual_files:
        validation = check_validation_tar(manual_dir / VALIDATION_TAR)
    check_network_files(name, builder, manual_dir, download_dir)
    import tensorflow_datasets as tfds

    config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir),
                                          try_download_gcs=not (entry and entry.manual_files))
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    try:
        builder.download_and_prepare(download_config=config, file_format=file_format)
    except NonMatchingChecksumError as error:
        found = re.search(r"Artifact (\S+), downloaded to (\S+), has wrong checksum", str(error))
        what = f"{found.group(2)} is not the file at {found.group(1)}" if found else str(error).splitlines()[0]
        raise DataError(
            f"tfds refused a file it needs to build {name}: {what} (its size or checksum differs from the one tfds "
            "registered). Replace it with a fresh download of that URL and prepare again."
        ) from error
    return Prepared(name, tfds_builder(name, data_dir), validation, synsets)


def convert_to_array_record(builder: tfds.core.DatasetBuilder) -> bool:
    """Write array_record copies of the tfrecord shards of a prepared dataset beside them and make that its format
    in its dataset_info.json (see the module docstring); whether anything was converted (not if already random
    access). Reports its rate and ETA on stderr."""
    if is_random_access(builder):
        return False
    import tensorflow as tf
    from array_record.python.array_record_module import ArrayRecordWriter
    from tensorflow_datasets.core import dataset_info

    splits = builder.info.splits
    total = sum(int(info.num_examples) for info in splits.values())
    print(f"converting {builder.info.full_name} in {builder.data_dir} to array_record ({total:,} records; the "
          "tfrecord files stay)", file=sys.stderr, flush=True)
    progress, done = Progress("converted", total, "records"), 0
    suffix = f".{builder.info.file_format.value}-"
    for info in splits.values():
        for shard, length in zip(info.filepaths, info.shard_lengths, strict=True):
            target = shard.parent / shard.name.replace(suffix, ".array_record-")
            if not target.exists():
                partial = target.parent / f"{target.name}.partial"
                writer = ArrayRecordWriter(os.fspath(partial), "group_size:1")  # one record per chunk, as tfds
                for record in tf.data.TFRecordDataset(os.fspath(shard)).as_numpy_iterator():
                    writer.write(record)
                writer.close()
                partial.rename(target)
            done += int(length)
            progress.update(done)
    progress.finish()
    proto = dataset_info.read_proto_from_builder_dir(builder.data_dir)
    proto.alternative_file_formats[:] = [proto.file_format]  # tfds reads only `file_format` when it opens a dataset
    proto.file_format = "array_record"
    dataset_info.write_dataset_info_proto(proto, builder.data_dir)
    return True


# --------------------------------------------------------------------------- summary


def directory_bytes(path: str | os.PathLike) -> int:
    """Bytes of the files under `path`."""
    return sum(file.stat().st_size for file in Path(path).rglob("*") if file.is_file())


def _image_sizes(builder: tfds.core.DatasetBuilder) -> str:
    shape = tuple(builder.info.features[feature_keys(builder)[0]].shape)
    if len(shape) == 3 and None not in shape[:2]:
        return f"{shape[0]}x{shape[1]}x{shape[2]} (all images)"
    sizes = [size for split in builder.info.splits for size in image_sizes(builder, split, _SIZE_SAMPLE)]
    if not sizes:
        return "no images"
    heights, widths = [h for h, _ in sizes], [w for _, w in sizes]
    return (f"varying: height {min(heights)}-{max(heights)}, width {min(widths)}-{max(widths)} pixels "
            f"({len(sizes):,} images sampled); runs resize them to data.resolution")


def summary(prepared: Prepared, data_dir: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, value) lines describing the prepared dataset, and warnings."""
    builder = prepared.builder
    splits = {split: int(info.num_examples) for split, info in builder.info.splits.items()}
    names = class_names(builder)
    classes = f"{len(names):,} in the label set"
    warnings = []
    if prepared.synsets is not None:
        shown = ", ".join(prepared.synsets[:8]) + (", ..." if len(prepared.synsets) > 8 else "")
        classes += f"; the training tar has images of {len(prepared.synsets):,} ({shown})"
        if len(prepared.synsets) < len(names):
            warnings.append(
                f"the training tar has images of only {len(prepared.synsets):,} of {len(names):,} classes: a run "
                "whose data.classes selects a class without images stops and names it (see `scaling data describe`)"
            )
    lines = [("dataset", f"{builder.info.full_name} in {data_dir} ({builder.info.file_format.value})")]
    for split, size in splits.items():
        value = f"{size:,} examples"
        if split == "validation" and prepared.validation is not None:
            value = prepared.validation.describe()
            if not prepared.validation.complete and not prepared.validation.problem:
                warnings.append(f"the validation set is partial ({size:,} of {VALIDATION_IMAGES:,} images): its "
                                "labels are right, but errors measured on it are not those of full ImageNet")
        lines.append((split, value))
    lines += [("classes", classes), ("image sizes", _image_sizes(builder)),
              ("on disk", f"{format_bytes(directory_bytes(builder.data_dir))} in {builder.data_dir}")]
    return lines, warnings
