"""First contact: --help of every documented command lists its own flags,
grouped, each with its default and help (absl's own flags behind
--helpfull), and exits 0; an output folder that is a file is refused in
one line before TensorFlow loads; the report writes into --out_dir."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
from absl import flags

from graph_nas.cli import help as help_lib
from graph_nas.search.settings import (AlgorithmSettings, ExecutorSettings,
                                       SearchSettings)
from tests.conftest import ROOT
from tests.report_fixtures import image_run

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
           COLUMNS="80")
BIN = pathlib.Path(sys.executable).parent
# A --help or a refused flag answers within a second or two; generous for
# two loaded cores.
HELP_TIMEOUT_S = 120


def _module(name):
  return [sys.executable, "-m", name]


def _script(name):
  path = BIN / name
  assert path.exists(), f"{path}: not installed (pip install -e .)"
  return [str(path)]


LAUNCHERS = {"python -m graph_nas.launch": _module("graph_nas.launch"),
             "graph-nas-search": "graph-nas-search"}
REPORTS = {"python -m graph_nas.report": _module("graph_nas.report"),
           "graph-nas-report": "graph-nas-report"}
DOTS = {"python -m graph_nas.dot": _module("graph_nas.dot"),
        "graph-nas-dot": "graph-nas-dot"}
# Each command's headings, in order.
HEADINGS = {
    "launch": ["Search", "Algorithm", "Early stopping", "Screening", "Executor",
               "Child training", "Output"],
    "report": ["Runs", "Plots", "HTML page", "Output"],
    "dot": ["Input", "Drawing", "Output"],
}
COMMANDS = ([(n, c, "launch") for n, c in LAUNCHERS.items()] +
            [(n, c, "report") for n, c in REPORTS.items()] +
            [(n, c, "dot") for n, c in DOTS.items()])


def _run(command, *args, python_args=()):
  argv = _script(command) if isinstance(command, str) else command
  if python_args:
    assert argv[0] == sys.executable
    argv = [argv[0], *python_args, *argv[1:]]
  return subprocess.run([*argv, *args], capture_output=True, text=True,
                        cwd=ROOT, env=ENV, check=False,
                        timeout=HELP_TIMEOUT_S)


def _sections(page):
  """{heading: [flag names]} of a help page."""
  out, heading = {}, None
  for line in page.splitlines():
    if re.fullmatch(r"[A-Z][A-Za-z ]*:", line):
      heading = line[:-1]
      out[heading] = []
    elif heading and line.startswith("  --"):
      out[heading].append(re.match(r"  --(\w+)", line).group(1))
    elif not line.strip():
      heading = None
  return out


def _flag_lines(page):
  """{flag name: its line (and continuation lines)} of a help page."""
  out, name = {}, None
  for line in page.splitlines():
    m = re.match(r"  --(\w+)", line)
    if m:
      name = m.group(1)
      out[name] = line
    elif name and line.startswith("      "):
      out[name] += " " + line.strip()
    else:
      name = None
  return out


def _helpfull_own_flags(page):
  """The flags --helpfull lists under graph_nas's modules."""
  names, ours = set(), False
  for line in page.splitlines():
    if re.fullmatch(r"\S+:", line):
      ours = line.startswith("graph_nas")
    elif ours:
      m = re.match(r"  --(?:\[no\])?(\w+):", line)
      if m:
        names.add(m.group(1))
  return names


def _imported(importtime_stderr):
  """The modules a `python -X importtime` run imported."""
  return {line.rsplit("|", 1)[1].strip()
          for line in importtime_stderr.splitlines()
          if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("name,command,kind", COMMANDS,
                         ids=[n for n, _, _ in COMMANDS])
def test_help_lists_the_commands_own_flags_grouped(name, command, kind):
  r = _run(command, "--help")
  assert r.returncode == 0, r.stderr[-2000:]
  page = r.stdout
  assert page.startswith(f"{name}: "), page[:200]
  sections = _sections(page)
  assert list(sections) == HEADINGS[kind], list(sections)
  for absl_flag in ("logtostderr", "--verbosity", "--v=", "flagfile",
                    "only_check_args"):
    assert absl_flag not in page
  assert "--helpfull" in page.splitlines()[-1] + page.splitlines()[-2]
  lines = _flag_lines(page)
  # Every line: --name[=default][ (choices)]: help.
  for flag, line in lines.items():
    assert re.match(rf"  --{flag}(=\S+)?( \([^)]*\))?: \S", line), line
  # Every flag the command defines is on the page, once; no other.
  r = _run(command, "--helpfull")
  assert r.returncode == 0, r.stderr[-2000:]
  assert "--[no]logtostderr" in r.stdout  # absl's, behind --helpfull
  own = _helpfull_own_flags(r.stdout)
  listed = [f for names in sections.values() for f in names]
  assert sorted(listed) == sorted(own)


@pytest.mark.parametrize("name,command", LAUNCHERS.items(),
                         ids=list(LAUNCHERS))
def test_launcher_help_shows_the_declared_defaults(name, command):
  r = _run(command, "-h")
  assert r.returncode == 0, r.stderr[-2000:]
  sections, lines = _sections(r.stdout), _flag_lines(r.stdout)
  search, algorithm = SearchSettings(), AlgorithmSettings()
  assert lines["max_trials"].startswith(
      f"  --max_trials={search.max_trials}: Architectures")
  assert lines["seed"].startswith(f"  --seed={search.seed}: ")
  assert lines["algorithm"].startswith(
      f"  --algorithm={algorithm.algorithm} (pqt|reinforce|random|evolution)"
      ": ")
  assert lines["learning_rate"].startswith(
      f"  --learning_rate={algorithm.learning_rate}: ")
  assert lines["rungs"].startswith(f"  --rungs={search.rungs}: ")
  assert lines["executor"].startswith(
      f"  --executor={ExecutorSettings().executor} (")
  assert re.match(r"  --epochs=\d+(\.\d+)?: Training epochs", lines["epochs"])
  assert lines["augment"].startswith("  --augment=true: ")
  assert lines["out_dir"].startswith("  --out_dir: Output folder")
  assert {"max_trials", "seed", "space"} <= set(sections["Search"])
  assert set(sections["Early stopping"]) == {"rungs", "eta",
                                             "timeout_minutes"}
  assert {"executor", "workers", "ray_address"} <= set(sections["Executor"])
  assert {"epochs", "batch_size", "data_dir"} <= set(
      sections["Child training"])
  assert {"out_dir", "retrain_best"} <= set(sections["Output"])


def test_help_needs_no_tensorflow():
  r = _run(_module("graph_nas.launch"), "--helpshort",
           python_args=("-X", "importtime"))
  assert r.returncode == 0, r.stderr[-2000:]
  assert "max_trials" in r.stdout
  imported = _imported(r.stderr)
  assert "graph_nas.cli.launch" in imported  # what is measured is seen
  assert not {m for m in imported if m.split(".")[0] == "tensorflow"}


def test_launcher_module_text_states_the_declared_defaults():
  r = subprocess.run(
      [sys.executable, "-c", "import graph_nas.cli.launch as l; "
       "print(l.__doc__)"], capture_output=True, text=True, cwd=ROOT,
      env=ENV, check=False, timeout=HELP_TIMEOUT_S)
  assert r.returncode == 0, r.stderr[-2000:]
  text = " ".join(r.stdout.split())
  assert f"--algorithm={AlgorithmSettings().algorithm}," in text
  assert f"--max_trials={SearchSettings().max_trials}," in text
  assert "{defaults}" not in text
  assert "PQT, controller learning rate 0.001" not in text


@pytest.mark.parametrize("below", [False, True], ids=["file", "below_file"])
def test_an_out_dir_that_is_a_file_is_refused_before_tensorflow(tmp_path,
                                                                below):
  path = tmp_path / "results.txt"
  path.write_text("mine\n")
  out_dir = path / "run" if below else path
  r = _run(_module("graph_nas.launch"), "--space=select_optimizer_b2",
           f"--out_dir={out_dir}", python_args=("-X", "importtime"))
  assert r.returncode == 1
  errors = [line for line in r.stderr.splitlines()
            if not line.startswith("import time:")]
  where = f"{path} " if below else ""
  assert errors == [f"error: --out_dir={out_dir}: {where}is a file, not a "
                    "folder"]
  imported = _imported(r.stderr)
  assert "graph_nas.cli.launch" in imported
  assert not {m for m in imported if m.split(".")[0] == "tensorflow"}
  assert path.read_text() == "mine\n"


def test_report_writes_into_out_dir_not_the_run_folder(tmp_path):
  run_dir, out_dir = tmp_path / "run", tmp_path / "reports" / "run"
  run_dir.mkdir()
  image_run(run_dir, n=12)
  before = sorted(p.name for p in run_dir.iterdir())
  r = _run(_module("graph_nas.report"), f"--runs={run_dir}", "--html",
           "--walks=8", f"--out_dir={out_dir}")
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"wrote {out_dir / 'pareto.png'}" in r.stdout
  assert f"wrote {out_dir / 'report.html'}" in r.stdout
  assert (out_dir / "pareto.png").read_bytes()[:4] == b"\x89PNG"
  assert "<html" in (out_dir / "report.html").read_text()
  assert sorted(p.name for p in run_dir.iterdir()) == before


def test_report_out_dir_is_one_folder_not_a_file(tmp_path):
  a_file = tmp_path / "f"
  a_file.write_text("")
  r = _run(_module("graph_nas.report"), f"--runs={tmp_path}",
           f"--out_dir={a_file}")
  assert r.returncode == 1
  assert r.stderr.strip() == (f"error: --out_dir={a_file}: is a file, not a "
                              "folder")
  r = _run(_module("graph_nas.report"), f"--runs={tmp_path},{tmp_path}",
           f"--out_dir={tmp_path / 'out'}")
  assert r.returncode == 1
  assert r.stderr.strip() == ("error: --out_dir applies to one folder: give "
                              "one --runs")


# ------------------------------------------------------ the help page
def _flag_values():
  fv = flags.FlagValues()
  flags.DEFINE_integer("trials", 10, "Trials. More text here.",
                       flag_values=fv)
  flags.DEFINE_enum("mode", "a", ["a", "b"], "Mode (a. or b.) of it. Then.",
                    flag_values=fv)
  flags.DEFINE_boolean("fast", False, "Go fast.", flag_values=fv)
  flags.DEFINE_list("names", ["x", "y"], "Names.", flag_values=fv)
  flags.DEFINE_string("out", None, "Output folder.", flag_values=fv)
  return fv


def test_help_page_lists_ungrouped_flags_under_other():
  fv = _flag_values()
  page = help_lib.help_text([help_lib.Group("main", ["trials", "mode"]),
                             help_lib.Group("absent", ["nothing"])],
                            "prog: what it does", fv, width=80)
  sections = _sections(page)
  assert sections == {"Main": ["trials", "mode"],
                      "Other": ["fast", "names", "out"]}
  lines = _flag_lines(page)
  assert lines["trials"] == "  --trials=10: Trials. More text here."
  assert lines["mode"] == "  --mode=a (a|b): Mode (a. or b.) of it. Then."
  assert lines["fast"] == "  --fast=false: Go fast."
  assert lines["names"] == "  --names=x,y: Names."
  assert lines["out"] == "  --out: Output folder."


def test_first_sentence_is_at_least_a_phrase():
  text = ("Start no new child (async) after this many minutes (0: no "
          "limit). What runs then finishes. And more.")
  assert help_lib.first_sentence(text) == text.split(" What")[0]
  text = ("0: the paper's controller. K >= 2: a value gets a logit. "
          "Neighbours share it.")
  assert help_lib.first_sentence(text) == text.split(" Neighbours")[0]
  assert help_lib.first_sentence("Seed of the sampled walks.") == \
      "Seed of the sampled walks."


def test_wants_help_stops_at_double_dash():
  assert help_lib.wants_help(["prog", "--x=1", "-h"])
  assert help_lib.wants_help(["prog", "--helpshort"])
  assert not help_lib.wants_help(["prog", "--", "--help"])
  assert not help_lib.wants_help(["prog", "--helpfull"])
  assert help_lib.wants_help(["prog", "--helpfull"], help_lib.HELPFULL_ARGS)
