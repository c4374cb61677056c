"""What another early-stopping reduction factor would have cost a stored
search: its trials replayed, in their order, through the package's own
stopping rule (graph_nas.search.halving.RungTable) with another --eta.

    python -m benchmarks.halving_replay --run=runs/cifar_cpu_demo --etas=2,3,4

For each eta: how many trials stop at each rung, the share of the full
budget trained in all (the sum over trials of the fraction each trained),
the seconds the children would have taken, and the best full-budget score.

What a replay can and cannot say:
- It replays the same trials in the same order. In a real run the rewards
  the searcher learns from change with eta, so later proposals differ.
- A trial is replayed only as far as the stored run trained it: when
  another eta would take a trial past the rung where the stored run
  stopped it, the script says so and gives no figures for that eta.
- Seconds: each trial's stored seconds scaled by the share of the budget
  it would train (fixed costs such as building and tracing the child, a
  few seconds, are scaled too: an estimate, not a measurement).
"""

import json
import os
import sqlite3

from absl import app, flags

from graph_nas.errors import SettingError
from graph_nas.search import halving

_RUN = flags.DEFINE_string("run", "runs/cifar_cpu_demo",
                           "A search's run folder (its trials.sqlite).")
_ETAS = flags.DEFINE_list("etas", ["2", "3", "4"],
                          "Reduction factors to replay.")


def stored_trials(db):
  """(rungs, [(trial_id, [score at each rung reached, then the full score
  if it finished], seconds, fraction trained)]) in trial order: the trials
  that trained (a repeat answered from the store took no decision)."""
  if not os.path.isfile(db):
    raise SystemExit(f"error: {db}: no such trial store (give --run the "
                     "folder of a search)")
  with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
    rows = conn.execute(
        "SELECT trial_id, reward, seconds, rung, budget_fraction, metrics "
        "FROM trials WHERE status = 'ok' AND cached_from IS NULL "
        "ORDER BY trial_id").fetchall()
    identity = conn.execute(
        "SELECT value FROM meta WHERE key = 'identity'").fetchone()
  rungs = halving.parse_rungs(
      json.loads(identity[0]).get("rungs") or "" if identity else "")
  out = []
  for tid, reward, seconds, rung, fraction, metrics in rows:
    scores = list(json.loads(metrics).get("rung_scores", []))[:rung or 0]
    scores.append(reward)  # the score at the rung it reached (or full)
    out.append((tid, scores, seconds, fraction or 1.0))
  return rungs, out


def replay(rungs, trials, eta):
  """The replayed run under `eta`: a dict, or None when a trial would go
  further than the stored run trained it."""
  table = halving.RungTable(rungs, eta)
  stops = [0] * (len(rungs) + 1)
  budget = seconds = 0.0
  best = None
  for tid, scores, stored_s, stored_fraction in trials:
    reached = len(rungs)
    for r in range(len(rungs)):
      if r >= len(scores):
        return None
      if not table.decide(str(tid), r, scores[r]):
        reached = r
        break
    if reached == len(rungs):
      if len(scores) <= len(rungs):
        return None  # the stored run stopped it: no full score
      table.add(str(tid), reached, scores[-1], True)
      if best is None or scores[-1] > best[0]:
        best = (scores[-1], tid)
    fraction = rungs[reached] if reached < len(rungs) else 1.0
    stops[reached] += 1
    budget += fraction
    seconds += stored_s * fraction / stored_fraction
  return {"eta": eta, "stops": stops, "budgets": budget, "seconds": seconds,
          "best": best}


def main(argv):
  del argv
  rungs, trials = stored_trials(os.path.join(_RUN.value, "trials.sqlite"))
  if not rungs:
    raise SystemExit(f"error: {_RUN.value}: a search without early "
                     "stopping (no rungs): nothing to replay")
  print(f"{_RUN.value}: {len(trials)} trials, rungs {rungs}")
  print("| eta | stopped at each rung / full | full budgets trained | "
        "children's seconds (estimate) | best full-budget score (trial) |")
  print("|---|---|---|---|---|")
  for eta in (float(e) for e in _ETAS.value):
    try:
      got = replay(rungs, trials, eta)
    except SettingError as e:
      raise SystemExit(f"error: flag --etas: {e}") from None
    if got is None:
      print(f"| {eta:g} | needs scores the stored run did not measure | | | |")
      continue
    best = got["best"]
    print(f"| {eta:g} | {' / '.join(map(str, got['stops']))} | "
          f"{got['budgets']:.2f} | {got['seconds']:.0f} | "
          f"{best[0]:.4f} ({best[1]}) |")


if __name__ == "__main__":
  app.run(main)
