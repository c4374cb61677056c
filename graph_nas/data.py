"""tfds input pipelines for child training: cifar10 and imagenet2012.

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

(The ImageNet hold-out of 50,000 training images follows MnasNet.)

Batches are ``(images, labels)``: images float32, normalised per channel with
the dataset's mean and standard deviation, labels int32. Training batches have
a fixed shape (``drop_remainder=True``), are shuffled, augmented (CIFAR: pad 4
+ random crop + horizontal flip; ImageNet: random-resized crop + flip) and
cover one epoch of the (possibly subsampled) training part, so that
``dataset.cardinality()`` is the number of steps per epoch; a trainer repeats
them. Evaluation batches keep every example (the last batch may be short).

Built datasets are cached per process (`load_dataset` returns the same
``tf.data.Dataset`` for the same arguments), and CIFAR-10 is decoded once into
memory, so the many children of a search share one input pipeline.

The tfds data dir is the ``data_dir`` argument, else the ``TFDS_DATA_DIR``
environment variable, else tfds' default (``~/tensorflow_datasets``). A dataset
that is not prepared there raises `GraphNasError` at once, saying how to get
it; nothing is downloaded unless ``download=True`` is passed.
"""

import collections
import dataclasses
import os
import threading

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from graph_nas.errors import GraphNasError

ROLES = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a child builder needs to know about a dataset.

  Attributes:
    name: the tfds name.
    input_shape: (height, width, channels) of the batches' images.
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
        mean=_CIFAR_MEAN, std=_CIFAR_STD),
    "imagenet2012": dict(
        splits={"train": "train[:-50000]", "validation": "train[-50000:]",
                "test": "validation"},
        train_size=1281167, holdout=50000, num_classes=1000, image_size=224,
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD),
}
SUPPORTED = tuple(_SPECS)

_CACHE_LOCK = threading.RLock()
# load_dataset arguments -> tf.data.Dataset, least recently used first.
_DATASETS = collections.OrderedDict()
MAX_CACHED_DATASETS = 16
_ARRAYS = {}  # (name, data_dir, split) -> (images uint8, labels int32)


def _spec(name):
  if name not in _SPECS:
    raise GraphNasError(f"unknown dataset '{name}'; supported: "
                        f"{', '.join(SUPPORTED)}")
  return _SPECS[name]


def dataset_info(name, *, image_size=None):
  """Returns the `DatasetInfo` of `name` (no data is read).

  Args:
    name: "cifar10" or "imagenet2012".
    image_size: side of the square images of the batches; ImageNet's default
      is 224; CIFAR-10 is always 32.
  """
  spec = _spec(name)
  size = _image_size(name, image_size)
  return DatasetInfo(name=name, input_shape=(size, size, 3),
                     num_classes=spec["num_classes"],
                     splits=dict(spec["splits"]), mean=spec["mean"],
                     std=spec["std"])


def _image_size(name, image_size):
  spec = _spec(name)
  if image_size is None:
    return spec["image_size"]
  if name == "cifar10" and image_size != 32:
    raise GraphNasError(f"cifar10 images are 32x32; image_size={image_size} "
                        "is not supported")
  if int(image_size) < 8:
    raise GraphNasError(f"image_size={image_size} is too small")
  return int(image_size)


def resolve_data_dir(data_dir=None):
  """The tfds data dir used: `data_dir`, else $TFDS_DATA_DIR, else tfds'."""
  if data_dir:
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
  env = os.environ.get("TFDS_DATA_DIR")
  if env:
    return os.path.abspath(os.path.expanduser(env))
  return os.path.expanduser(tfds.core.constants.DATA_DIR)


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
           "(or call load_dataset(..., download=True) once).")
  else:
    how = (f"With internet access tfds downloads it: run `tfds build {name} "
           f"--data_dir={data_dir}` (or call load_dataset(..., "
           "download=True), or pass the launcher's download flag). "
           "Offline, point data_dir or TFDS_DATA_DIR at a folder that holds "
           f"a prepared {name}/ (e.g. ../shared/data/tfds beside the repo).")
  return f"dataset '{name}' is not prepared in {where}: {cause}. {how}"


def _builder(name, data_dir, download):
  """A tfds builder for `name` whose data is present (or downloaded)."""
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise GraphNasError(f"cannot open tfds dataset '{name}' in data dir "
                        f"'{data_dir}': {e}") from e
  if download and not builder.is_prepared():
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


def _split(name, role, train_examples, builder):
  """The tfds split string of `role`, subsampled to `train_examples`."""
  spec = _spec(name)
  split = spec["splits"][role]
  if role == "train" and train_examples is not None:
    n = int(train_examples)
    known = builder.info.splits.get("train") if builder.info.splits else None
    total = known.num_examples if known is not None else spec["train_size"]
    available = total - spec["holdout"]
    if n < 1 or n > available:
      raise GraphNasError(f"train_examples={n} is out of range for {name} "
                          f"(1..{available})")
    split = f"train[:{n}]"
  return split


def _cifar_arrays(builder, name, data_dir, split):
  """The decoded images and labels of a CIFAR split, once per process.

  Kept as host tensors that every pipeline built on them shares (a numpy
  array would be copied into each new dataset: 138 MB for the train part).
  """
  key = (name, data_dir, split)
  with _CACHE_LOCK:
    if key not in _ARRAYS:
      ds = _as_dataset(builder, name, data_dir, split, batch_size=-1)
      images, labels = tfds.as_numpy(ds)
      with tf.device("/CPU:0"):
        _ARRAYS[key] = (tf.constant(np.asarray(images, dtype=np.uint8)),
                        tf.constant(labels.astype(np.int32)))
    return _ARRAYS[key]


def _normalise(images, mean, std):
  images = tf.cast(images, tf.float32)
  return (images - tf.constant(mean, tf.float32)) / tf.constant(std,
                                                                tf.float32)


def _cifar_augment(images, seed, pad=4):
  """Pad-`pad` random crop and horizontal flip of a batch (vectorised)."""
  shape = tf.shape(images)
  batch, height, width = shape[0], shape[1], shape[2]
  seeds = tf.random.experimental.stateless_split(seed, 3)
  flip = tf.random.stateless_uniform([batch], seeds[0]) < 0.5
  images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]),
                    images)
  padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  dy = tf.random.stateless_uniform([batch], seeds[1], 0, 2 * pad + 1,
                                   dtype=tf.int32)
  dx = tf.random.stateless_uniform([batch], seeds[2], 0, 2 * pad + 1,
                                   dtype=tf.int32)
  rows = dy[:, None] + tf.range(height)[None, :]
  cols = dx[:, None] + tf.range(width)[None, :]
  out = tf.gather(padded, rows, axis=1, batch_dims=1)
  return tf.gather(out, cols, axis=2, batch_dims=1)


# The map functions below use no Python control flow: they skip autograph
# (faster to trace, and independent of the source files on disk).
_plain = tf.autograph.experimental.do_not_convert


def _cifar_pipeline(images, labels, role, batch_size, seed, drop_remainder,
                    augment, mean, std):
  @_plain
  def augment_batch(batch, batch_seed):
    return _cifar_augment(batch[0], batch_seed), batch[1]

  @_plain
  def normalise(x, y):
    return _normalise(x, mean, std), y

  ds = tf.data.Dataset.from_tensor_slices((images, labels))
  if role == "train":
    ds = ds.shuffle(int(images.shape[0]), seed=seed,
                    reshuffle_each_iteration=True)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if augment:
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.map(normalise, num_parallel_calls=tf.data.AUTOTUNE)


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


def _imagenet_pipeline(builder, name, data_dir, split, role, batch_size, seed,
                       drop_remainder, augment, image_size, eval_examples,
                       mean, std):
  @_plain
  def train_crop(example, example_seed):
    return (_random_resized_crop(example[0], image_size, example_seed),
            tf.cast(example[1], tf.int32))

  @_plain
  def eval_crop(x, y):
    return _center_crop(x, image_size), tf.cast(y, tf.int32)

  @_plain
  def normalise(x, y):
    return _normalise(x, mean, std), y

  training = role == "train"
  read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
  ds = _as_dataset(builder, name, data_dir, split, shuffle_files=training,
                   read_config=read_config,
                   decoders={"image": tfds.decode.SkipDecoding()})
  if eval_examples is not None and not training:
    ds = ds.take(eval_examples)
  if training:
    ds = ds.shuffle(16 * batch_size, seed=seed, reshuffle_each_iteration=True)
  if augment:
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        train_crop, num_parallel_calls=tf.data.AUTOTUNE)
  else:
    ds = ds.map(eval_crop, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  return ds.map(normalise, num_parallel_calls=tf.data.AUTOTUNE)


def load_dataset(name, split_role, batch_size, *, data_dir=None,
                 train_examples=None, eval_examples=None, image_size=None,
                 seed=0, download=False, augment=None, drop_remainder=None):
  """A batched, normalised, prefetched `tf.data.Dataset` of one split role.

  Args:
    name: "cifar10" or "imagenet2012".
    split_role: "train", "validation" (held-out part of the official training
      split: the reward's source) or "test" (the official held-out split).
    batch_size: global batch size.
    data_dir: tfds data dir; default $TFDS_DATA_DIR, else tfds' default.
    train_examples: use only the first N examples of the training part (for
      short budgets); "train" role only.
    eval_examples: use only the first N examples of a validation/test split.
    image_size: ImageNet image side (default 224); CIFAR-10 is always 32.
    seed: seed of shuffling and augmentation.
    download: let tfds download and prepare a missing dataset (needs
      internet; ImageNet needs the manual download first). Off by default:
      a missing dataset raises GraphNasError at once.
    augment: augment the batches; default True for "train" only.
    drop_remainder: drop the last short batch; default True for "train" (a
      fixed batch shape, so a child's train step traces once), False else.

  Returns:
    A finite dataset of (images float32 [B, H, W, 3], labels int32 [B]): one
    epoch; the same object for the same arguments within a process (the
    MAX_CACHED_DATASETS most recently used are kept).

  Raises:
    GraphNasError: unknown name/role, bad sizes, or the dataset is not
      prepared in the data dir.
  """
  spec = _spec(name)
  if split_role not in ROLES:
    raise GraphNasError(f"unknown split role '{split_role}'; one of "
                        f"{', '.join(ROLES)}")
  if int(batch_size) < 1:
    raise GraphNasError(f"batch_size={batch_size} must be positive")
  if train_examples is not None and split_role != "train":
    train_examples = None
  if eval_examples is not None:
    if split_role == "train":
      eval_examples = None
    elif int(eval_examples) < 1:
      raise GraphNasError(f"eval_examples={eval_examples} must be positive")
  size = _image_size(name, image_size)
  data_dir = resolve_data_dir(data_dir)
  training = split_role == "train"
  augment = training if augment is None else bool(augment)
  drop_remainder = training if drop_remainder is None else bool(
      drop_remainder)
  # Unshuffled, unaugmented evaluation batches do not depend on the seed.
  key = (name, split_role, int(batch_size), data_dir, train_examples,
         eval_examples, size, int(seed) if training or augment else None,
         augment, drop_remainder)
  with _CACHE_LOCK:
    if key in _DATASETS:
      _DATASETS.move_to_end(key)
      return _DATASETS[key]
    builder = _builder(name, data_dir, download)
    split = _split(name, split_role, train_examples, builder)
    if name == "cifar10":
      images, labels = _cifar_arrays(builder, name, data_dir, split)
      if eval_examples is not None:
        images, labels = images[:eval_examples], labels[:eval_examples]
      if drop_remainder and int(images.shape[0]) < batch_size:
        raise GraphNasError(f"{name} {split_role}: {len(images)} examples "
                            f"make no full batch of {batch_size}")
      ds = _cifar_pipeline(images, labels, split_role, int(batch_size),
                           int(seed), drop_remainder, augment, spec["mean"],
                           spec["std"])
    else:
      ds = _imagenet_pipeline(builder, name, data_dir, split, split_role,
                              int(batch_size), int(seed), drop_remainder,
                              augment, size, eval_examples, spec["mean"],
                              spec["std"])
    ds = ds.prefetch(tf.data.AUTOTUNE)
    _DATASETS[key] = ds
    while len(_DATASETS) > MAX_CACHED_DATASETS:
      _DATASETS.popitem(last=False)
    return ds


def num_batches(dataset):
  """Batches in one pass of a dataset from `load_dataset` (None: unknown)."""
  n = int(dataset.cardinality())
  return n if n >= 0 else None


def clear_cache():
  """Forgets every cached dataset and decoded array of this process."""
  with _CACHE_LOCK:
    _DATASETS.clear()
    _ARRAYS.clear()
