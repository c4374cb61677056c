"""The installable tool: the wheel built from setup.py ships every space,
the commands, the license and dependency metadata that resolve; installed
(outside the repository) the commands run and find the spaces by name."""

import email
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import PROTOS, ROOT

SOURCES = ("setup.py", "README.md", "LICENSE", "graph_nas", "protos")
COMMANDS = {"graph-nas-search": "graph_nas.launch:run",
            "graph-nas-report": "graph_nas.report:run",
            "graph-nas-dot": "graph_nas.dot:run"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """A wheel built from a copy of the sources (no build/ in the checkout)."""
  tmp = tmp_path_factory.mktemp("wheel")
  src = tmp / "src"
  src.mkdir()
  for name in SOURCES:
    path = ROOT / name
    if path.is_dir():
      shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(
          "__pycache__", "*.egg-info", "protos_data"))
    else:
      shutil.copy2(path, src / name)
  proc = subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "--no-deps",
       "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist"),
       str(src)], capture_output=True, text=True, check=False, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (path,) = (tmp / "dist").glob("graph_nas-*.whl")
  return path


def _metadata(wheel):
  with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(z.read(name))


def test_the_wheel_ships_every_space_as_package_data(wheel):
  with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    shipped = sorted(PROTOS.glob("*.textproto")) + [
        PROTOS / "search_space.proto"]
    assert len(shipped) > 10
    for path in shipped:
      inside = f"graph_nas/protos_data/{path.name}"
      assert inside in names, inside
      assert z.read(inside) == path.read_bytes()
    assert "graph_nas/protos/search_space_pb2.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry_points = z.read(next(
        n for n in names if n.endswith(".dist-info/entry_points.txt")))
  for command, target in COMMANDS.items():
    assert f"{command} = {target}" in entry_points.decode()


def test_the_wheel_metadata(wheel):
  meta = _metadata(wheel)
  assert meta["Requires-Python"] == ">=3.11"
  assert meta["License"] == "Apache-2.0"
  requires = meta.get_all("Requires-Dist")
  names = [r.split(";")[0].strip() for r in requires]
  assert "protobuf>=7.35.1" in names
  assert not any(n.startswith("tqdm") for n in names)  # unused
  assert 'grpcio-tools; extra == "test"' in requires  # no needless pin
  assert 'tensorflow[and-cuda]>=2.21; extra == "gpu"' in requires
  assert {"test", "ray", "gpu"} <= set(meta.get_all("Provides-Extra"))


def test_installed_commands_run_outside_the_repository(wheel, tmp_path):
  target = tmp_path / "site"
  proc = subprocess.run(
      [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
       "-q", "--target", str(target), str(wheel)], capture_output=True,
      text=True, check=False, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  # The installed copy, not this checkout (PYTHONPATH comes first).
  env = dict(os.environ, PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="2")
  work = tmp_path / "work"
  work.mkdir()

  def run(*argv):
    return subprocess.run([str(a) for a in argv], capture_output=True,
                          text=True, cwd=work, env=env, check=False,
                          timeout=300)

  r = run(sys.executable, "-c", "import graph_nas.space as s; "
          "print(s.__file__); print(s.find('cifar_cpu'))")
  assert r.returncode == 0, r.stderr
  module, found = r.stdout.split()
  assert module.startswith(str(target)), module
  assert found == str(target / "graph_nas" / "protos_data" /
                      "cifar_cpu.textproto")
  bin_dir = target / "bin"
  out = work / "run"
  r = run(bin_dir / "graph-nas-search", "--space=select_optimizer_b2",
          "--max_trials=4", "--walks_per_update=2", f"--out_dir={out}")
  assert r.returncode == 0, r.stderr[-3000:]
  assert (out / "trials.sqlite").exists() and (out / "top_trials.md").exists()
  assert (out / "tensorboard" / "trials" / "trial_000003").is_dir()
  r = run(bin_dir / "graph-nas-report", f"--runs={out}")
  assert r.returncode == 0, r.stderr[-3000:]
  assert "'trials': 4" in r.stdout
  r = run(bin_dir / "graph-nas-dot", "--space=cifar_cpu",
          f"--dot={work / 'space.dot'}")
  assert r.returncode == 0, r.stderr[-3000:]
  assert (work / "space.dot").read_text().startswith("digraph ")
  r = run(bin_dir / "graph-nas-search", "--space=no_such_space")
  assert r.returncode != 0
  assert r.stderr.strip().splitlines()[-1].startswith(
      "error: no search space 'no_such_space': not a file, nor a shipped "
      "space (shipped: cifar, cifar_cpu, ")


def test_ci_runs_the_readme_test_command_word_for_word():
  """The README's two commands (set up + main job; tests), each one line;
  .ci/run ends with the second, word for word, with skips forbidden."""
  readme = (ROOT / "README.md").read_text()
  two = readme.split("\n## ")[0]  # the first screen, before any section
  blocks = re.findall(r"```bash\n(.*?)\n```", two, re.S)
  assert len(blocks) == 2 and all("\n" not in b for b in blocks), blocks
  assert blocks[1].startswith('pip install ".[test]" && ')
  lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
  assert lines[-1] == blocks[1]
  assert "export GRAPH_NAS_NO_SKIPS=1" in lines


def test_readme_first_screen_holds_the_commands_and_an_example_that_runs(
    tmp_path):
  """The first 40 lines: what it is, the two commands, and a complete
  own-function example of at most 15 lines, which runs as printed and
  finds what the README says it prints."""
  lines = (ROOT / "README.md").read_text().splitlines()
  first = "\n".join(lines[:40])
  assert "pip install . && bash launch/cifar_cpu_demo.sh" in first
  assert 'pip install ".[test]" && python -m pytest -q tests' in first
  example = re.findall(r"```python\n(.*?)\n```", first, re.S)
  assert len(example) == 1, "no complete example in the first 40 lines"
  code = example[0]
  assert len(code.splitlines()) <= 15 + 3  # + the blank lines PEP 8 asks
  assert len([l for l in code.splitlines() if l.strip()]) <= 15
  (tmp_path / "quickstart.py").write_text(code + "\n")
  r = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path,
                     capture_output=True, text=True, timeout=180,
                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert r.returncode == 0, r.stderr[-2000:]
  said = re.search(r"then\n`(1\.5 \{.*?\})`", "\n".join(lines[:60]))
  assert said, "the README does not say what the example prints"
  assert r.stdout.strip().splitlines()[-1] == said.group(1)
  assert "trial 59" in r.stderr and "ETA" in r.stderr  # it talks
