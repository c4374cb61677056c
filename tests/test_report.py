"""Tests of the reports: block-string table, Pareto front and plot, HTML."""

import base64
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from graph_nas import child, report
from graph_nas.child import block_args
from graph_nas.report import html as html_report
from tests.conftest import ROOT, require_tool
from tests.report_fixtures import image_run, shared_toy_run

ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
  return shared_toy_run(tmp_path_factory)


# ----------------------------------------------------------------- front
def test_pareto_front_of_known_points():
  pts = [(10, 0.50),   # 0 front
         (20, 0.60),   # 1 front
         (15, 0.40),   # 2 dominated by 0
         (20, 0.55),   # 3 dominated by 1 (same cost, less accurate)
         (30, 0.60),   # 4 dominated by 1 (same accuracy, costlier)
         (5, 0.30),    # 5 front (cheapest)
         (40, 0.90),   # 6 front (most accurate)
         (np.nan, 0.99),  # 7 no cost: never on the front
         (10, 0.50)]   # 8 a copy of 0: the first is kept
  costs, accs = zip(*pts)
  assert report.pareto_front(costs, accs) == [5, 0, 1, 6]
  assert report.pareto_front([], []) == []
  # Every point off the front is dominated by one on it, and no point on
  # the front is dominated by any point.
  rng = np.random.default_rng(0)
  c, a = rng.uniform(1, 100, 200), rng.uniform(0, 1, 200)
  front = set(report.pareto_front(c, a))
  def dominates(j, i):
    return c[j] <= c[i] and a[j] >= a[i] and (c[j] < c[i] or a[j] > a[i])
  for i in range(200):
    dominated = any(dominates(j, i) for j in range(200))
    assert (i in front) == (not dominated)


# ----------------------------------------------------------------- table
def test_top_table_shows_block_strings_and_labelled_costs(tmp_path):
  _, rows = image_run(tmp_path, n=6)
  trials = report.load_runs([str(tmp_path)])[str(tmp_path)]
  ranked = report.best_first(trials)
  table = report.top_table(ranked)
  header = table.splitlines()[0]
  assert "multiply-adds (M)" in header and "params (M)" in header
  assert "FLOP" not in table
  assert len(table.splitlines()) == 2 + 6  # the failed trial is not ranked
  for line, trial in zip(table.splitlines()[2:], ranked):
    blocks = block_args.encode_block_strings(
        child.blocks_from_config(trial["config"]))
    assert blocks and all(re.fullmatch(r"r\d+_k\d_s\d\d_e\d_i\d+_o\d+"
                                       r"(_se0\.25)?(_aswish)?", b)
                          for b in blocks)
    assert line.endswith(f"| `{' '.join(blocks)}` |")
    m = trial["metrics"]
    assert f"| {m['flops'] / 1e6:.1f} | {m['params'] / 1e6:.3f} |" in line
  # Block strings round-trip to the same layers.
  first = ranked[0]["config"]
  cells = report.table_rows(ranked[:1])[0]
  decoded = block_args.decode_block_strings(cells[-1].split(" "))
  assert decoded == child.blocks_from_config(first)


def test_top_table_shows_every_key_of_toy_and_broken_configs():
  rows = [{"trial_id": 3, "reward": 0.5, "seconds": 0.0, "metrics": {},
           "config": {"optimizer": "adam", "p1": 50}},
          {"trial_id": 4, "reward": 0.4, "seconds": 0.0, "metrics": {},
           "config": {"layers": [{"kernel_size": 4}]}}]  # even kernel
  table = report.top_table(rows).splitlines()
  # One column per key; no cost, time or budget column: none has one.
  assert table[0] == ("| rank | trial | reward | optimizer | p1 | "
                      "layers (kernel_size) |")
  assert table[2] == "| 1 | 3 | 0.5000 | adam | 50 | - |"
  assert table[3] == "| 2 | 4 | 0.4000 | - | - | 4 |"
  assert report.architecture_text(rows[0]["config"]) == (
      "optimizer: adam, p1: 50")


# ---------------------------------------------------------------- Pareto
def test_pareto_plot_marks_front_and_target(tmp_path):
  target = 30e6
  _, rows = image_run(tmp_path, n=40, target_flops=target)
  trials = report.load_runs([str(tmp_path)])[str(tmp_path)]
  meta = report.run_meta(str(tmp_path))
  assert report.target_flops_of(meta) == target
  fig = report.pareto_figure(trials, report.target_flops_of(meta))
  ax = fig.axes[0]
  assert ax.get_xscale() == "log"
  assert "multiply-adds" in ax.get_xlabel()
  costs = np.array([m["flops"] for _, _, m, _ in rows])
  accs = np.array([m["val_accuracy"] for _, _, m, _ in rows])
  front = report.pareto_front(costs, accs)
  lines = {l.get_label(): l for l in ax.get_lines()}
  joined = [l for l in ax.get_lines() if l.get_drawstyle() == "steps-post"]
  assert len(joined) == 1
  np.testing.assert_allclose(joined[0].get_xdata(), costs[front] / 1e6)
  np.testing.assert_allclose(joined[0].get_ydata(), accs[front])
  target_line = [l for name, l in lines.items() if "target" in name]
  assert len(target_line) == 1
  np.testing.assert_allclose(target_line[0].get_xdata(), [30, 30])
  import matplotlib.pyplot as plt
  plt.close(fig)

  path = report.write_pareto(str(tmp_path))
  assert path == str(tmp_path / "pareto.png")
  assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_plot_without_target_has_no_target_line(tmp_path):
  image_run(tmp_path, n=10)
  trials = report.load_runs([str(tmp_path)])[str(tmp_path)]
  fig = report.pareto_figure(trials, report.target_flops_of(
      report.run_meta(str(tmp_path))))
  assert not [l for l in fig.axes[0].get_lines()
              if "target" in str(l.get_label())]
  import matplotlib.pyplot as plt
  plt.close(fig)


def test_no_pareto_plot_for_a_run_without_costs(toy_dir, monkeypatch):
  # absl's handler may be set up by earlier tests so that caplog sees
  # nothing: read what report logs directly.
  lines = []
  monkeypatch.setattr(report.logging, "info",
                      lambda msg, *args: lines.append(msg % args))
  assert report.write_pareto(str(toy_dir)) is None
  assert not (toy_dir / "pareto.png").exists()
  assert any("no Pareto plot" in line for line in lines), lines


def test_write_run_reports_writes_every_file(tmp_path):
  image_run(tmp_path, n=8)
  out = report.write_run_reports(str(tmp_path), top=3)
  assert out["pareto"] == str(tmp_path / "pareto.png")
  md = (tmp_path / "top_trials.md").read_text()
  top = md.split("\n\n")[0]  # the failed trials may follow
  assert len(top.strip().splitlines()) == 2 + 3  # header, rule, 3 rows
  assert (tmp_path / "rewards.png").exists()


# ------------------------------------------------------------------ HTML
def _images(page):
  return [base64.b64decode(m) for m in
          re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_html_report_of_a_toy_run_is_self_contained(toy_dir):
  require_tool("dot", "graphviz")
  path = html_report.write_html(str(toy_dir), walks=64)
  assert path == str(toy_dir / "report.html")
  page = (toy_dir / "report.html").read_text()
  images = _images(page)
  assert len(images) == 2  # reward plot and policy graph
  assert all(i[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
  # Nothing is loaded from elsewhere.
  assert not re.search(r'(src|href)="(?!data:)', page)
  # A toy run: no cost column, no Pareto section; every key of its config.
  assert "multiply-adds" not in page and "Pareto" not in page
  assert "<th>optimizer</th>" in page and "<th>p4</th>" in page
  assert page.count("<tr><td class=\"num\">") == 10  # top 10 of 12 trials
  assert "select_optimizer_b2.textproto" in page  # the settings
  assert "Learned policy" in page


def test_html_report_of_an_image_run(tmp_path):
  image_run(tmp_path, n=12, target_flops=30e6)
  page = html_report.build_html(str(tmp_path), top=5)
  assert len(_images(page)) == 2  # reward and Pareto plots
  assert "<code>r" in page and "_k" in page  # block strings
  # No checkpoint: the policy graph is replaced by the reason.
  assert "no policy graph" in page and "checkpoint" in page
  assert "target_flops" in page


def test_html_report_names_a_space_that_changed(toy_dir, tmp_path):
  other = tmp_path / "other.textproto"
  text = (ROOT / "protos" / "select_optimizer_b2.textproto").read_text()
  other.write_text(text.replace("stop: 100", "stop: 99", 1))
  page = html_report.build_html(str(toy_dir), space_path=str(other))
  assert "is not the space this run searched" in page


def test_report_cli_writes_html(toy_dir):
  r = subprocess.run([sys.executable, "-m", "graph_nas.report",
                      f"--runs={toy_dir}", "--html", "--walks=32"],
                     capture_output=True, text=True, cwd=ROOT, env=ENV,
                     timeout=300, check=False)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"wrote {toy_dir / 'report.html'}" in r.stdout
  header = next(l for l in r.stdout.splitlines() if l.startswith("| rank"))
  assert header.endswith("| optimizer | p1 | p2 | p3 | p4 |"), header
  assert "multiply-adds" not in r.stdout
  assert "no Pareto plot" in r.stderr  # the log line of a toy run


def test_report_renders_in_headless_chromium(toy_dir, tmp_path):
  require_tool("chromium", "chromium")
  require_tool("dot", "graphviz")
  from PIL import Image
  html_report.write_html(str(toy_dir), walks=32)
  shot = tmp_path / "shot.png"
  r = subprocess.run(["bash", str(ROOT / "benchmarks" /
                                  "screenshot_report.sh"),
                      str(toy_dir / "report.html"), str(shot), "1000,1400"],
                     capture_output=True, text=True, timeout=120,
                     check=False)
  assert r.returncode == 0, r.stderr
  img = np.asarray(Image.open(shot).convert("L"))
  assert img.shape == (1400, 1000)
  # Not a blank page: text, tables and plots leave many dark pixels.
  assert (img < 128).mean() > 0.01
