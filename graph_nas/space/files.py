"""Spaces from text and files: parsing, loading, the shipped spaces.

:func:`loads` parses a textproto string (errors with the parser's line and
column), :func:`load` reads a file or a shipped space given by name,
:func:`find` resolves such a name and :func:`shipped_spaces` lists the
spaces shipped with graph-nas.
"""

import os
import re

from google.protobuf import text_format

from graph_nas.errors import GraphNasError
from graph_nas.protos import search_space_pb2 as pb
from graph_nas.space.graph import SearchSpace

_BOM = "\ufeff"


def loads(text: str, source: str = "<string>") -> SearchSpace:
  """Parses and validates a textproto given as a string (or as UTF-8
  bytes). A leading byte-order mark (some Windows editors write one) is
  dropped."""
  if isinstance(text, (bytes, bytearray)):
    try:
      text = bytes(text).decode("utf-8")
    except UnicodeDecodeError as e:
      raise GraphNasError(f"cannot parse textproto: not UTF-8 ({e})",
                          source=source) from None
  if text.startswith(_BOM):
    text = text[len(_BOM):]
  proto = pb.SearchSpace()
  try:
    text_format.Parse(text, proto)
  except text_format.ParseError as e:
    line = getattr(e, "GetLine", lambda: None)()
    msg = str(e)
    # ParseError's message starts with "line:col : " already.
    msg = re.sub(r"^\d+:\d+\s*:\s*", "", msg)
    col = getattr(e, "GetColumn", lambda: None)()
    where = f"{line}:{col}" if line and col else line
    raise GraphNasError(f"cannot parse textproto: {msg}", source=source,
                        line=where) from None
  except (UnicodeDecodeError, ValueError) as e:
    raise GraphNasError(f"cannot parse textproto: {e}", source=source) \
        from None
  return SearchSpace(proto, source=source, text=text)


# The shipped spaces (protos/*.textproto): in an installed package they are
# package data (graph_nas/protos_data, see setup.py); in a source checkout
# (or an editable install) they are the repository's protos/.
# graph_nas/, the folder above this package.
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_DIRS = (os.path.join(_HERE, "protos_data"),
                os.path.join(os.path.dirname(_HERE), "protos"))
_SUFFIX = ".textproto"


def shipped_spaces() -> dict:
  """{name: path} of the spaces shipped with graph-nas (name: the file
  name without .textproto, e.g. "cifar_cpu")."""
  for folder in SHIPPED_DIRS:
    try:
      names = sorted(n for n in os.listdir(folder) if n.endswith(_SUFFIX))
    except OSError:
      continue
    if names:
      return {n[:-len(_SUFFIX)]: os.path.join(folder, n) for n in names}
  return {}


def find(name_or_path: str) -> str:
  """The file of a space given by path, or by a shipped space's name.

  An existing file is used as given. Otherwise a bare name ("cifar_cpu", or
  "cifar_cpu.textproto" without a folder) is looked up among the shipped
  spaces. Anything else is an error that lists the shipped names."""
  if os.path.isfile(name_or_path):
    return name_or_path
  shipped = shipped_spaces()
  bare = not os.path.dirname(name_or_path)
  name = name_or_path[:-len(_SUFFIX)] if name_or_path.endswith(_SUFFIX) \
      else name_or_path
  if bare and name in shipped:
    return shipped[name]
  listing = ", ".join(shipped) or "none found"
  if bare and not name_or_path.endswith(_SUFFIX):
    raise GraphNasError(f"no search space {name_or_path!r}: not a file, nor "
                        f"a shipped space (shipped: {listing})")
  raise GraphNasError(f"no such search space file (or give a shipped space "
                      f"by name: {listing})", source=name_or_path)


def load(path: str) -> SearchSpace:
  """Loads and validates a search space textproto file; `path` may also
  be a shipped space's name (see find)."""
  path = find(path)
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except FileNotFoundError:
    raise GraphNasError("no such search space file", source=path) from None
  except (OSError, UnicodeDecodeError) as e:
    raise GraphNasError(f"cannot read: {e}", source=path) from None
  return loads(text, source=path)
