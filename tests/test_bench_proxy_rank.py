"""Tests of benchmarks/proxy_rank.py's choice of architectures."""

import argparse

from benchmarks import proxy_rank
from graph_nas import space
from graph_nas.search.store import config_key


def _space():
  return space.load(str(proxy_rank.ROOT / "protos" / "cifar_cpu.textproto"))


def test_fresh_only_leaves_out_the_reused_architectures_and_their_twins():
  sp = _space()
  every = proxy_rank.architectures(sp, 5, 2000)
  fresh = proxy_rank.architectures(sp, 5, 2000, fresh_only=True)
  assert [a["id"] for a in every[:10]] == [f"proxy_check/{i}"
                                           for i in range(10)]
  assert every[10:] == fresh  # the same new walks, seeds from 2000
  assert len(fresh) == 5
  reused = {config_key(a["config"]) for a in every[:10]}
  assert not reused & {config_key(a["config"]) for a in fresh}
  assert all(a["stored"] is None for a in fresh)


def test_the_command_names_what_differs_from_the_defaults():
  args = argparse.Namespace(archs=40, walk_seed=1000, fresh_only=False,
                            out=str(proxy_rank.RESULTS / "proxy_rank" /
                                    "proxy_rank"))
  assert proxy_rank.command(args) == "python -m benchmarks.proxy_rank"
  args = argparse.Namespace(
      archs=40, walk_seed=2000, fresh_only=True,
      out=str(proxy_rank.RESULTS / "proxy_rank" / "proxy_rank_fresh"))
  assert proxy_rank.command(args) == (
      "python -m benchmarks.proxy_rank --walk_seed=2000 --fresh_only "
      "--out=benchmarks/results/proxy_rank/proxy_rank_fresh")
