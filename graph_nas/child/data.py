"""tfds input data for child training: cifar10 and imagenet2012.

(One module of ~450 lines: the roles, the two kinds of split, the
augmentation and where the data is are one idea, a dataset as children
read it.)

Each dataset has three *roles*:

- ``"train"``: what a child is trained on;
- ``"validation"``: a fixed held-out part of the official training split, the
  source of the search reward (the official test / validation split is never
  looked at during a search);
- ``"test"``: the official held-out split, for the final evaluation of the
  architectures a search found.

| name           | train            | validation        | test         |
| -------------- | ---------------- | ----------------- | ------------ |
| `cifar10`      | `train[:45000]`  | `train[45000:]`   | `test`       |
| `imagenet2012` | `train[:-50000]` | `train[-50000:]`  | `validation` |

A prepared copy whose training split has another size (a subset, or the
tests' generated data) holds out the same share of it, its last examples.
(The ImageNet hold-out of 50,000 training images follows MnasNet.)

Two kinds of split, both *raw* images (float32 or uint8 on the 0..255
scale: a child normalises its own inputs, so a saved child takes raw
images):

- `ArraySplit` (CIFAR-10): the decoded split held in memory as two tensors,
  read once per search. A trainer draws batches by index, so a child's seed
  changes shuffle order and augmentation without rebuilding anything.
- `StreamSplit` (ImageNet): a `tf.data` pipeline of decoded, cropped and
  resized batches (random-resized crop for training, centre crop else),
  built once per search; training streams are endless.

`augment_batch` is the in-graph, stateless per-batch augmentation (CIFAR:
pad-4 random crop + horizontal flip; ImageNet: flip, the crop being done in
the pipeline), seeded by a per-step seed.

Where the data is (`resolve_data_dir`): the ``data_dir`` argument; else
``$TFDS_DATA_DIR``; else a prepared copy beside the repository
(``../shared/data/tfds``) when one exists; else tfds' default data dir,
where a missing CIFAR-10 is downloaded (the network permitting).
"""

import dataclasses
import os
import pathlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from graph_nas.errors import GraphNasError

ROLES = ("train", "validation", "test")
# Set to 1 to ignore a prepared copy beside the repository (tests use it to
# play a machine that has none).
NO_SHARED_ENV = "GRAPH_NAS_NO_SHARED_DATA"
SHARED_RELATIVE = os.path.join("..", "shared", "data", "tfds")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a child builder needs to know about a dataset.

  Attributes:
    name: the tfds name.
    input_shape: (height, width, channels) of the images children see.
    num_classes: number of labels.
    splits: role -> the tfds split string it is read from.
    mean: per-channel mean used for normalisation (0..255 scale).
    std: per-channel standard deviation (0..255 scale).
  """
  name: str
  input_shape: tuple
  num_classes: int
  splits: dict
  mean: tuple
  std: tuple


@dataclasses.dataclass
class ArraySplit:
  """A whole split in memory: images uint8 [N, H, W, 3], labels int32 [N]."""
  images: tf.Tensor
  labels: tf.Tensor

  def __len__(self):
    return int(self.labels.shape[0])


@dataclasses.dataclass
class StreamSplit:
  """Batches (images float32 0..255 [B, H, W, 3], labels int32 [B]).

  Training streams repeat forever with a fixed batch shape; evaluation
  streams are one pass (the last batch may be short).
  """
  dataset: tf.data.Dataset
  batch_size: int


# Per-channel statistics on the 0..255 scale.
_CIFAR_MEAN = (0.4914 * 255, 0.4822 * 255, 0.4465 * 255)
_CIFAR_STD = (0.2470 * 255, 0.2435 * 255, 0.2616 * 255)
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

_SPECS = {
    "cifar10": dict(
        splits={"train": "train[:45000]", "validation": "train[45000:]",
                "test": "test"},
        train_size=50000, holdout=5000, num_classes=10, image_size=32,
        mean=_CIFAR_MEAN, std=_CIFAR_STD, in_memory=True),
    "imagenet2012": dict(
        splits={"train": "train[:-50000]", "validation": "train[-50000:]",
                "test": "validation"},
        train_size=1281167, holdout=50000, num_classes=1000, image_size=224,
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD, in_memory=False),
}
SUPPORTED = tuple(_SPECS)


def _spec(name):
  if name not in _SPECS:
    raise GraphNasError(f"unknown dataset '{name}'; supported: "
                        f"{', '.join(SUPPORTED)}")
  return _SPECS[name]


def dataset_info(name, *, image_size=None):
  """Returns the `DatasetInfo` of `name` (no data is read).

  Args:
    name: "cifar10" or "imagenet2012".
    image_size: side of the square images children see; default the
      dataset's own (32 for CIFAR-10, 224 for ImageNet). CIFAR-10 images are
      resized to it once when the data is read.
  """
  spec = _spec(name)
  size = _image_size(name, image_size)
  return DatasetInfo(name=name, input_shape=(size, size, 3),
                     num_classes=spec["num_classes"],
                     splits=dict(spec["splits"]), mean=spec["mean"],
                     std=spec["std"])


def is_in_memory(name):
  """Whether `name` is read as an `ArraySplit` (else a `StreamSplit`)."""
  return _spec(name)["in_memory"]


def _image_size(name, image_size):
  spec = _spec(name)
  if image_size is None:
    return spec["image_size"]
  if int(image_size) < 8:
    raise GraphNasError(f"image_size={image_size} is too small (at least 8)")
  return int(image_size)


def _shared_copy():
  """A prepared ../shared/data/tfds beside the repository, or None."""
  if os.environ.get(NO_SHARED_ENV, "") not in ("", "0"):
    return None
  repo = pathlib.Path(__file__).resolve().parents[1]
  for base in (repo, pathlib.Path.cwd()):
    candidate = (base / SHARED_RELATIVE).resolve()
    if candidate.is_dir():
      return str(candidate)
  return None


def resolve_data_dir(data_dir=None):
  """The tfds data dir, and where it came from.

  Returns (path, origin), origin one of "flag", "env", "shared",
  "tfds-default": `data_dir` when given; else $TFDS_DATA_DIR; else a
  prepared copy beside the repository (../shared/data/tfds) when one exists;
  else tfds' default data dir (~/tensorflow_datasets).
  """
  if data_dir:
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir))), "flag"
  env = os.environ.get("TFDS_DATA_DIR")
  if env:
    return os.path.abspath(os.path.expanduser(env)), "env"
  shared = _shared_copy()
  if shared is not None:
    return shared, "shared"
  return os.path.expanduser(tfds.core.constants.DATA_DIR), "tfds-default"


def _missing_message(name, data_dir, builder, cause):
  where = f"tfds data dir '{data_dir}'"
  try:
    where += f" (looked for {builder.data_path})"
  except Exception:  # pylint: disable=broad-except
    pass
  if name == "imagenet2012":
    how = ("ImageNet cannot be downloaded automatically: download "
           "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
           f"https://image-net.org into {data_dir}/downloads/manual, then "
           f"prepare it with `tfds build imagenet2012 --data_dir={data_dir}` "
           "(or pass --download once; from Python: download=True).")
  else:
    how = (f"Three ways to provide it: (1) with internet access, pass "
           f"--download (from Python: download=True in TrainSettings or "
           f"the data functions; or run `tfds build {name} "
           f"--data_dir={data_dir}`); (2) point --data_dir (from Python: "
           f"data_dir=...) or TFDS_DATA_DIR at a folder holding a prepared "
           f"{name}/; (3) put a prepared copy at {SHARED_RELATIVE} beside "
           f"the repository.")
  return f"dataset '{name}' is not prepared in {where}: {cause}. {how}"


def _builder(name, data_dir, download):
  """A tfds builder for `name` whose data is present (or downloaded)."""
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise GraphNasError(f"cannot open tfds dataset '{name}' in data dir "
                        f"'{data_dir}': {e}") from e
  if download and not builder.is_prepared():
    logging.info("%s is not in %s: downloading it with tfds", name, data_dir)
    try:
      builder.download_and_prepare()
    except Exception as e:  # pylint: disable=broad-except
      raise GraphNasError(_missing_message(name, data_dir, builder,
                                           f"download failed ({e})")) from e
  return builder


def _as_dataset(builder, name, data_dir, split, **kwargs):
  """builder.as_dataset, turning 'not prepared' into a GraphNasError.

  tfds' own check (no data files -> AssertionError) is immediate and touches
  no network; it is also what `tfds.testing.mock_data` replaces.
  """
  try:
    return builder.as_dataset(split=split, as_supervised=True, **kwargs)
  except AssertionError as e:
    raise GraphNasError(_missing_message(name, data_dir, builder,
                                         str(e).split(".")[0])) from e
  except (ValueError, KeyError) as e:
    raise GraphNasError(f"dataset '{name}' in '{data_dir}': cannot read "
                        f"split '{split}': {e}") from e


def _parts(name, builder):
  """(training part, hold-out) sizes of the official training split.

  The official split keeps the table's hold-out (5,000 of CIFAR-10's
  50,000). A prepared copy of another size (a subset, or generated data)
  holds out the same share of what it has, the last examples.
  """
  spec = _spec(name)
  known = builder.info.splits.get("train") if builder.info.splits else None
  total = known.num_examples if known is not None else spec["train_size"]
  if total == spec["train_size"]:
    holdout = spec["holdout"]
  else:
    holdout = max(1, round(total * spec["holdout"] / spec["train_size"]))
  if total - holdout < 1:
    raise GraphNasError(f"dataset '{name}': its training split has "
                        f"{total} examples, too few to hold some out")
  return total - holdout, holdout


def _split(name, role, train_examples, builder):
  """The tfds split string of `role`, subsampled to `train_examples`."""
  spec = _spec(name)
  split = spec["splits"][role]
  available, holdout = _parts(name, builder)
  if available + holdout != spec["train_size"] and role != "test":
    split = (f"train[:{available}]" if role == "train" else
             f"train[{available}:]")
  if role == "train" and train_examples is not None:
    n = int(train_examples)
    if n < 1 or n > available:
      raise GraphNasError(f"train_examples={n} is out of range for {name} "
                          f"(1..{available})")
    split = f"train[:{n}]"
  return split


def open_builder(name, data_dir=None, download=None):
  """(tfds builder, data dir) of `name`, with the data present.

  download: True downloads a missing dataset; None (default) downloads
  only into tfds' default data dir (no --data_dir, no TFDS_DATA_DIR, no
  prepared copy beside the repository); False never.

  Raises GraphNasError saying how to provide the data when it is missing.
  """
  _spec(name)
  path, origin = resolve_data_dir(data_dir)
  if download is None:
    download = origin == "tfds-default" and name != "imagenet2012"
  return _builder(name, path, download), path


# The map functions below use no Python control flow: they skip autograph
# (faster to trace, and independent of the source files on disk).
_plain = tf.autograph.experimental.do_not_convert


def load_arrays(name, role, *, data_dir=None, download=None,
                train_examples=None, eval_examples=None, image_size=None):
  """A whole split of an in-memory dataset (CIFAR-10) as an `ArraySplit`.

  Args:
    name: "cifar10".
    role: "train", "validation" or "test".
    data_dir, download: see `open_builder`.
    train_examples: only the first N examples of the training part.
    eval_examples: only the first N examples of a validation/test split.
    image_size: resize the images to this side once (default: as stored).
  """
  if not is_in_memory(name):
    raise GraphNasError(f"{name} is too large to hold in memory: use "
                        "load_stream")
  _check_role(role)
  builder, path = open_builder(name, data_dir, download)
  split = _split(name, role, train_examples if role == "train" else None,
                 builder)
  ds = _as_dataset(builder, name, path, split).batch(8192)
  parts = list(tfds.as_numpy(ds))
  if not parts:
    raise GraphNasError(f"dataset '{name}' in '{path}': split '{split}' is "
                        "empty")
  images = np.concatenate([p[0] for p in parts]).astype(np.uint8)
  labels = np.concatenate([p[1] for p in parts]).astype(np.int32)
  if eval_examples is not None and role != "train":
    if int(eval_examples) < 1:
      raise GraphNasError(f"eval_examples={eval_examples} must be positive")
    images, labels = images[:eval_examples], labels[:eval_examples]
  size = _image_size(name, image_size)
  with tf.device("/CPU:0"):
    x = tf.constant(images)
    if x.shape[1] != size or x.shape[2] != size:
      x = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(
          x, [size, size], method="bilinear", antialias=True)), 0, 255),
                  tf.uint8)
    return ArraySplit(x, tf.constant(labels))


def _check_role(role):
  if role not in ROLES:
    raise GraphNasError(f"unknown split role '{role}'; one of "
                        f"{', '.join(ROLES)}")


def load_stream(name, role, batch_size, *, data_dir=None, download=None,
                train_examples=None, eval_examples=None, image_size=None,
                seed=0):
  """A `StreamSplit` of a file-backed dataset (ImageNet; any dataset works).

  Training streams shuffle (files and a buffer of 16 batches, seeded once
  per search), random-resized crop, repeat forever; evaluation streams
  centre crop and make one pass. Images are float32 on the 0..255 scale.
  """
  _check_role(role)
  if int(batch_size) < 1:
    raise GraphNasError(f"batch_size={batch_size} must be positive")
  size = _image_size(name, image_size)
  builder, path = open_builder(name, data_dir, download)
  training = role == "train"
  split = _split(name, role, train_examples if training else None, builder)

  @_plain
  def train_crop(example, example_seed):
    return (_random_resized_crop(example[0], size, example_seed),
            tf.cast(example[1], tf.int32))

  @_plain
  def eval_crop(x, y):
    return _center_crop(x, size), tf.cast(y, tf.int32)

  read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
  ds = _as_dataset(builder, name, path, split, shuffle_files=training,
                   read_config=read_config,
                   decoders={"image": tfds.decode.SkipDecoding()})
  if training:
    ds = ds.repeat().shuffle(16 * batch_size, seed=seed)
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        train_crop, num_parallel_calls=tf.data.AUTOTUNE)
  else:
    if eval_examples is not None:
      ds = ds.take(int(eval_examples))
    ds = ds.map(eval_crop, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(int(batch_size), drop_remainder=training)
  return StreamSplit(ds.prefetch(tf.data.AUTOTUNE), int(batch_size))


def load_split(name, role, batch_size, **kwargs):
  """`load_arrays` for in-memory datasets, else `load_stream`."""
  if is_in_memory(name):
    kwargs.pop("seed", None)
    return load_arrays(name, role, **kwargs)
  return load_stream(name, role, batch_size, **kwargs)


def augment_batch(images, seed, *, crop=True, pad=4):
  """Stateless augmentation of a batch [B, H, W, C] (any dtype).

  Horizontal flip, and with `crop` a pad-`pad` random crop (CIFAR); `seed`
  is an int32/int64 tensor of shape [2]. The same seed gives the same
  batch, whatever else ran before.
  """
  shape = tf.shape(images)
  batch, height, width = shape[0], shape[1], shape[2]
  seeds = tf.random.experimental.stateless_split(seed, 3)
  flip = tf.random.stateless_uniform([batch], seeds[0]) < 0.5
  images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]),
                    images)
  if not crop:
    return images
  padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  dy = tf.random.stateless_uniform([batch], seeds[1], 0, 2 * pad + 1,
                                   dtype=tf.int32)
  dx = tf.random.stateless_uniform([batch], seeds[2], 0, 2 * pad + 1,
                                   dtype=tf.int32)
  rows = dy[:, None] + tf.range(height)[None, :]
  cols = dx[:, None] + tf.range(width)[None, :]
  out = tf.gather(padded, rows, axis=1, batch_dims=1)
  return tf.gather(out, cols, axis=2, batch_dims=1)


def _random_resized_crop(encoded, size, seed):
  """Inception-style crop (area 8-100%, aspect 3/4-4/3) of a JPEG, resized."""
  shape = tf.io.extract_jpeg_shape(encoded)
  bbox = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4])
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=bbox, seed=seed, min_object_covered=0.1,
      aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
      max_attempts=10, use_image_if_no_bounding_boxes=True)
  offset_y, offset_x, _ = tf.unstack(begin)
  crop_h, crop_w, _ = tf.unstack(crop_size)
  window = tf.stack([offset_y, offset_x, crop_h, crop_w])
  image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
  image = tf.image.resize(image, [size, size], method="bilinear")
  flip_seed = tf.random.experimental.stateless_fold_in(seed, 1)
  return tf.image.stateless_random_flip_left_right(image, flip_seed)


def _center_crop(encoded, size, crop_padding=32):
  """Centre crop of side size/(size+32) of the short side, resized to size."""
  shape = tf.io.extract_jpeg_shape(encoded)
  height, width = shape[0], shape[1]
  side = tf.cast(
      (size / (size + crop_padding)) *
      tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
  offset_y = (height - side + 1) // 2
  offset_x = (width - side + 1) // 2
  window = tf.stack([offset_y, offset_x, side, side])
  image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
  return tf.image.resize(image, [size, size], method="bilinear")


