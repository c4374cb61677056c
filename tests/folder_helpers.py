"""Helpers of the run-folder tests: a folder's fingerprint, and a folder
where nothing may be written.

The tests run as root, where chmod stops no write. What proves that reading
a run writes nothing is `snapshot`: every file's bytes, size and mtime, and
every folder's listing and mtime (a file created and removed again changes
its folder's mtime). `read_only_folder` adds a folder that truly refuses
writes where it can: `chattr +i` as root (ext4 and the like, with
CAP_LINUX_IMMUTABLE), chmod as any other user.
"""

import contextlib
import hashlib
import os
import shutil
import subprocess


def snapshot(folder) -> dict:
  """{relative path: (sha256, size, mtime_ns)} of every file, and
  {relative folder + "/": (sorted names, mtime_ns)} of every folder."""
  folder = str(folder)
  out = {}
  for dirpath, dirnames, filenames in os.walk(folder):
    rel = os.path.relpath(dirpath, folder)
    out[rel + "/"] = (sorted(dirnames + filenames),
                      os.stat(dirpath).st_mtime_ns)
    for name in filenames:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
      st = os.stat(path)
      out[os.path.join(rel, name)] = (digest, st.st_size, st.st_mtime_ns)
  return out


def _all_paths(folder):
  paths = []
  for dirpath, _, filenames in os.walk(str(folder)):
    paths.append(dirpath)
    paths.extend(os.path.join(dirpath, n) for n in filenames)
  return paths


def _chattr(flag, paths) -> bool:
  try:
    r = subprocess.run(["chattr", flag, *paths], capture_output=True,
                       timeout=60, check=False)
  except OSError:
    return False
  return r.returncode == 0


def _writable(folder) -> bool:
  probe = os.path.join(str(folder), ".probe")
  try:
    with open(probe, "w"):
      pass
  except OSError:
    return False
  os.remove(probe)
  return True


@contextlib.contextmanager
def read_only_folder(folder):
  """The folder and everything in it read-only while the block runs.

  Yields how: "chattr" (root: the immutable attribute), "chmod" (another
  user), or "none" (root on a file system without the attribute: nothing
  stops a write, the caller's snapshot is the only check). With "chattr"
  and "chmod", a write in the folder is checked to fail before the block.
  """
  paths = _all_paths(folder)
  how = "none"
  if os.geteuid() != 0:
    for p in paths:
      os.chmod(p, 0o555 if os.path.isdir(p) else 0o444)
    how = "chmod"
  elif shutil.which("chattr") and _chattr("+i", paths):
    how = "chattr"
  else:
    _chattr("-i", paths)  # undo a partial success
  try:
    if how != "none":
      assert not _writable(folder), f"{folder} is still writable ({how})"
    yield how
  finally:
    if how == "chattr":
      _chattr("-i", paths)
    elif how == "chmod":
      for p in paths:
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
