"""The machine's accelerators, before TensorFlow is imported.

`cpu_only_machine` looks for accelerator device nodes and TensorFlow
device plugins; `skip_absent_gpu_probe` quiets TensorFlow's CUDA probe on a
machine without any. No TensorFlow import here: the launcher and
graph_nas.api call skip_absent_gpu_probe before TensorFlow is first
imported.
"""

import glob
import os
import sys

# Device nodes of accelerators TensorFlow may use: CUDA GPUs (/dev/nvidia*,
# also in containers), WSL GPUs (/dev/dxg), ROCm (/dev/kfd), TPUs.
_ACCELERATOR_NODES = ("nvidia*", "dxg", "kfd", "accel*", "vfio")


def cpu_only_machine(dev="/dev", search_path=None) -> bool:
  """Whether this is a Linux machine without any accelerator TensorFlow
  could use: none of _ACCELERATOR_NODES under `dev` and no PluggableDevice
  plugin (a non-empty tensorflow-plugins/ on `search_path`, default
  sys.path). Other systems: False (their wheels carry no CUDA)."""
  if not sys.platform.startswith("linux"):
    return False
  if any(glob.glob(os.path.join(dev, name)) for name in _ACCELERATOR_NODES):
    return False
  for entry in (sys.path if search_path is None else search_path):
    plugins = os.path.join(entry or ".", "tensorflow-plugins")
    if os.path.isdir(plugins) and os.listdir(plugins):
      return False
  return True


def skip_absent_gpu_probe(strategy="default"):
  """TensorFlow's wheel carries CUDA: on a machine without a GPU its start-up
  probe logs `E0000 ... failed call to cuInit: ...` at error level.
  CUDA_VISIBLE_DEVICES="" does not stop the probe (checked with TF 2.21);
  TF_ENABLED_DEVICE_TYPES=CPU does (TensorFlow then asks only its CPU
  device factory for devices). Set here, before TensorFlow is first
  imported (process and local Ray workers inherit it), and only on a
  cpu_only_machine(), not for the tpu strategy, where the user has not
  set it."""
  if ("TF_ENABLED_DEVICE_TYPES" in os.environ or strategy == "tpu" or
      not cpu_only_machine()):
    return
  os.environ["TF_ENABLED_DEVICE_TYPES"] = "CPU"
