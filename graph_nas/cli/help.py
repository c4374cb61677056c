"""`--help` of the commands: their own flags, grouped, each with its default
and one line of help; absl's own flags (logging, verbosity, flag files)
stay behind --helpfull.

absl's --help lists the flags of the program's main module, and the main
module of `python -m graph_nas.launch` is a small module that runs
graph_nas.cli.launch and defines no flag: absl printed one line and exited
1. So every command's `run()` calls `exit_on_help` before `app.run`: when
the command line asks for help (--help, -h, -?, --helpshort), it prints the
command's page and exits 0; --helpfull prints every flag, absl's too, by
module (absl's listing) and exits 0 (absl's exits 1). --helpxml stays
absl's.

A command says which flags go under which heading (`Group`); a flag the
command defines but no group names is listed under "other", so that none
is hidden. What else the commands share: `parse_flags`, absl's parsing
ending in one line (`error: ...`), not a page of usage text, and
`file_in_the_way`, the check of an output folder before anything is
imported or written.
"""

import os
import re
import shutil
import sys
import textwrap
from typing import Iterable, List, NamedTuple, Optional, Sequence

from absl import flags

# What asks for this page (absl's --help has the short name -?).
HELP_ARGS = frozenset({"-h", "--help", "-help", "-?", "--helpshort",
                       "-helpshort", "--help=true", "--helpshort=true"})
HELPFULL_ARGS = frozenset({"--helpfull", "-helpfull", "--helpfull=true"})
OTHER = "other"
FOOTER = ("Flags: --name=value (a boolean also --name / --noname). absl's "
          "own flags (logging, verbosity, flag files): --helpfull.")


class Group(NamedTuple):
  """A heading of the help page and the flags under it, in order."""
  title: str
  names: Sequence[str]


def wants_help(argv: Sequence[str], asks=HELP_ARGS) -> bool:
  """Whether the command line (argv[0] is the program) asks for help (one
  of `asks` before any "--")."""
  for arg in argv[1:]:
    if arg == "--":
      return False
    if arg in asks:
      return True
  return False


def own_flags(flag_values=None) -> List[str]:
  """Names of the flags defined outside absl (the commands' own), in the
  order their modules registered them."""
  fv = flag_values if flag_values is not None else flags.FLAGS
  names = []
  for module, module_flags in fv.flags_by_module_dict().items():
    if module == "absl" or module.startswith("absl."):
      continue
    for flag in module_flags:
      if flag.name not in names:
        names.append(flag.name)
  return names


def grouped(groups: Iterable[Group], flag_values=None) -> List[Group]:
  """The groups with their flags that are defined, then "other": the
  command's own flags that no group names."""
  fv = flag_values if flag_values is not None else flags.FLAGS
  out, seen = [], set()
  for title, names in groups:
    names = [n for n in names if n in fv and n not in seen]
    seen.update(names)
    if names:
      out.append(Group(title, names))
  rest = [n for n in own_flags(fv) if n not in seen]
  if rest:
    out.append(Group(OTHER, rest))
  return out


def default_text(flag) -> Optional[str]:
  """The flag's default as one writes it on the command line (None: no
  default)."""
  value = flag.default
  if value is None:
    return None
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, (list, tuple)):
    return ",".join(str(v) for v in value)
  if value == "":
    return "''"
  return str(value)


def first_sentence(text: str, at_least: int = 40) -> str:
  """The help's first sentence (a full stop outside brackets that a
  capital letter or the end follows), and the next ones while shorter than
  `at_least` characters in all; the whole help is --helpfull's."""
  text = " ".join(text.split())
  depth = 0
  for i, ch in enumerate(text):
    if ch in "([":
      depth += 1
    elif ch in ")]":
      depth = max(0, depth - 1)
    elif ch == "." and depth == 0 and i + 1 >= at_least and (
        i + 1 == len(text) or
        (text[i + 1] == " " and i + 2 < len(text) and text[i + 2].isupper())):
      return text[:i + 1]
  return text


def _help_of(flag) -> str:
  """The flag's help without absl's "<a|b|c>: " before an enum's."""
  text = flag.help or ""
  choices = getattr(flag.parser, "enum_values", None)
  prefix = "<" + "|".join(choices or ()) + ">: "
  return text[len(prefix):] if choices and text.startswith(prefix) else text


def flag_line(flag, width: int) -> str:
  """`  --name=<default> (<choices>): help`, wrapped to `width`."""
  head = "--" + flag.name
  default = default_text(flag)
  if default is not None:
    head += "=" + default
  choices = getattr(flag.parser, "enum_values", None)
  if choices:
    head += " (" + "|".join(choices) + ")"
  return textwrap.fill(f"{head}: {first_sentence(_help_of(flag))}",
                       width=width, initial_indent="  ",
                       subsequent_indent="      ", break_on_hyphens=False,
                       break_long_words=False)


def about(doc: str) -> str:
  """A module text's summary and its example commands: the first paragraph
  and the indented paragraphs right after it."""
  paragraphs = re.split(r"\n\s*\n", (doc or "").strip("\n"))
  keep = paragraphs[:1]
  for p in paragraphs[1:]:
    if not p.startswith(" "):
      break
    keep.append(p)
  return "\n\n".join(keep)


def help_text(groups: Iterable[Group], header: str = "", flag_values=None,
              width: Optional[int] = None) -> str:
  """The help page: `header`, then one heading per group, one line per
  flag (`--name=<default>: help`), then how to see absl's flags."""
  fv = flag_values if flag_values is not None else flags.FLAGS
  width = width or min(100, max(60, shutil.get_terminal_size().columns))
  lines = [header.rstrip(), ""] if header else []
  for title, names in grouped(groups, fv):
    lines.append(title[:1].upper() + title[1:] + ":")
    lines.extend(flag_line(fv[n], width) for n in names)
    lines.append("")
  lines.append(textwrap.fill(FOOTER, width=width))
  return "\n".join(lines) + "\n"


def exit_on_help(groups: Iterable[Group], header: str = "", argv=None,
                 flag_values=None) -> None:
  """Prints the help page and exits 0 when `argv` (default sys.argv) asks
  for help (--helpfull: then every flag, absl's included, by module);
  otherwise returns."""
  argv = sys.argv if argv is None else argv
  fv = flag_values if flag_values is not None else flags.FLAGS
  if wants_help(argv, HELPFULL_ARGS):
    from absl import app
    app.define_help_flags()  # they are listed too
    text = (header.rstrip() + "\n\n" if header else "") + (
        "Every flag, absl's included, by the module that defines it:\n\n" +
        fv.get_help() + "\n")
  elif wants_help(argv):
    text = help_text(groups, header, fv)
  else:
    return
  try:
    sys.stdout.write(text)
    sys.stdout.flush()
  except BrokenPipeError:  # e.g. `--help | head`
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  sys.exit(0)


def parse_flags(argv, flag_values=None):
  """absl flag parsing that ends in one clear line, not usage text (an
  app.run flags_parser)."""
  fv = flag_values if flag_values is not None else flags.FLAGS
  try:
    return fv(argv)
  except flags.Error as e:
    sys.exit(f"error: {e}")


def file_in_the_way(path: str) -> Optional[str]:
  """Why `path` cannot be (made) a folder: "is a file, not a folder" when
  it is one, "<a folder above> is a file, not a folder" when a path above
  it is; None when it can."""
  full = here = os.path.abspath(path)
  while not os.path.isdir(here):
    if os.path.lexists(here):
      where = "" if here == full else here + " "
      return f"{where}is a file, not a folder"
    parent = os.path.dirname(here)
    if parent == here:
      break
    here = parent
  return None


def program(default: str) -> str:
  """The command's name as it was run: a console script's own name, else
  `default` (e.g. "python -m graph_nas.launch")."""
  name = os.path.basename(sys.argv[0] or "")
  return name if name.startswith("graph-nas-") else default


def run_command(main, groups: Iterable[Group], doc: str, module: str,
                usage: str, flags_parser=None) -> None:
  """Runs a command's absl `main`: --help first prints its flags (`groups`,
  headed by the first paragraph of `doc` and `Usage: <program> <usage>`)
  and exits 0; flag errors are one line (`flags_parser`, default
  parse_flags). module: "graph_nas.launch" for `python -m ...`."""
  from absl import app  # pylint: disable=import-outside-toplevel
  name = program(f"python -m {module}")
  exit_on_help(groups, f"{name}: " + about(doc) +
               f"\n\nUsage: {name} {usage}")
  app.run(main, flags_parser=flags_parser or parse_flags)
