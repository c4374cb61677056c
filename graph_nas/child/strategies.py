"""tf.distribute strategies by name: where children train.

"default": the default strategy (the CPU, or the one GPU TensorFlow places
ops on); "mirrored": MirroredStrategy over all local GPUs, or over all
logical CPU devices when there is none; "tpu": TPUStrategy on a TPU address.
"""

import tensorflow as tf
from absl import logging

from graph_nas.errors import GraphNasError
from graph_nas.child.settings import STRATEGIES


def describe_devices():
  """One line naming the devices children will train on."""
  gpus = tf.config.list_logical_devices("GPU")
  if gpus:
    return f"{len(gpus)} GPU(s): " + ", ".join(d.name for d in gpus)
  return "CPU (no GPU visible to TensorFlow)"


def make_strategy(name="default", *, tpu=None):
  """The `tf.distribute.Strategy` called `name` (see the module doc)."""
  if isinstance(name, tf.distribute.Strategy):
    return name
  if name not in STRATEGIES:
    raise GraphNasError(f"unknown strategy '{name}'; one of "
                        f"{', '.join(STRATEGIES)}")
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if not devices:
      devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    logging.info("MirroredStrategy over %s", ", ".join(devices))
    return tf.distribute.MirroredStrategy(devices)
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu or "")
    if tpu not in (None, "", "local"):
      tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  except Exception as e:  # pylint: disable=broad-except
    raise GraphNasError(f"cannot connect to TPU '{tpu}': {e}") from e
