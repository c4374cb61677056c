"""The search loop: propose, decode, evaluate, store, update, checkpoint.

The loop knows only interfaces: a SearchSpace (decode), an Algorithm
(propose / update / save / load), an Evaluator (config -> EvalResult) and
the TrialStore. The same loop runs the toy tasks and the image searches.

Durability and resume. Trial i of batch b has id b * walks_per_update + i.
Every finished trial is committed to SQLite at once. After each update the
algorithm's whole state (controller weights, optimizer slots, baseline, PQT
queue, random state, number of updates) is written atomically to one file.
Rerunning on the same output folder loads that checkpoint; the batch that
was interrupted is proposed again from the same state -- hence the same
walks for a seeded run -- and trials of it already in the store are reused,
not run again. Each trial's own training seed is `seed + trial_id`, so a
resumed search evaluates exactly what an uninterrupted one would have.
"""

import dataclasses
import hashlib
import json
import math
import os
import time
import traceback
from typing import Callable, Dict, List, Optional, Protocol

from absl import logging

from graph_nas.algorithms import Algorithm
from graph_nas.errors import GraphNasError
from graph_nas.space import SearchSpace
from graph_nas.store import TrialStore

DB_NAME = "trials.sqlite"
CHECKPOINT_NAME = "checkpoint.npz"


@dataclasses.dataclass
class EvalResult:
  """What an evaluator says of one architecture."""
  status: str  # "ok" or "failed"
  reward: Optional[float] = None
  metrics: Dict = dataclasses.field(default_factory=dict)
  reason: str = ""


class Evaluator(Protocol):
  """Scores one decoded architecture config."""

  def evaluate(self, config: dict, trial_id: int, seed: int) -> EvalResult:
    ...


class ToyEvaluator:
  """Scores a config with a toy reward function (no training)."""

  def __init__(self, reward_fn: Callable[[dict], float]):
    self.reward_fn = reward_fn

  def evaluate(self, config, trial_id, seed):
    del trial_id, seed
    return EvalResult("ok", float(self.reward_fn(config)))

  def finalize(self, config, out_dir, seed):
    del config, out_dir, seed
    return {}


@dataclasses.dataclass
class SearchSettings:
  max_trials: int = 1500
  walks_per_update: int = 1
  seed: int = 0
  failure_reward: float = 0.0
  max_consecutive_failures: int = 10
  log_every: int = 1


class SearchStopped(GraphNasError):
  """The search stopped before max_trials (e.g. too many failures)."""


def _space_fingerprint(space: SearchSpace) -> str:
  return hashlib.sha256(space.proto.SerializeToString(
      deterministic=True)).hexdigest()[:16]


def _fmt_duration(seconds: float) -> str:
  seconds = int(max(0, seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Search:
  """One search in one output folder; `run()` starts or resumes it."""

  def __init__(self, space: SearchSpace, algorithm: Algorithm,
               evaluator: Evaluator, out_dir: str,
               settings: SearchSettings, run_info: Optional[Dict] = None):
    self.space = space
    self.algorithm = algorithm
    self.evaluator = evaluator
    self.out_dir = out_dir
    self.settings = settings
    self.run_info = dict(run_info or {})
    os.makedirs(out_dir, exist_ok=True)
    self.store = TrialStore(os.path.join(out_dir, DB_NAME))
    self.checkpoint_path = os.path.join(out_dir, CHECKPOINT_NAME)
    self._writer = None

  # ------------------------------------------------------------- identity
  def _check_identity(self):
    """A resumed folder must hold the same search (space, algorithm, seed,
    walks per update)."""
    identity = {"space": _space_fingerprint(self.space),
                "space_name": self.space.name,
                "algorithm": self.algorithm.name,
                "seed": self.settings.seed,
                "walks_per_update": self.settings.walks_per_update}
    old = self.store.get_meta("identity")
    if old is None:
      self.store.set_meta("identity", identity)
      self.store.set_meta("run_info", self.run_info)
      return
    flag_of = {"space": "--space", "space_name": "--space",
               "algorithm": "--algorithm", "seed": "--seed",
               "walks_per_update": "--walks_per_update"}
    for key, value in identity.items():
      if old.get(key) != value:
        raise GraphNasError(
            f"{self.out_dir} holds a search with {flag_of[key]} "
            f"{key}={old.get(key)!r}, not {value!r}: use another --out_dir "
            "or the same settings to resume")

  # ---------------------------------------------------------------- loop
  def run(self) -> Dict:
    self._check_identity()
    s = self.settings
    if os.path.exists(self.checkpoint_path):
      self.algorithm.load(self.checkpoint_path)
    batch = self.algorithm.num_updates
    done_before = self.store.count()
    if done_before:
      logging.info("resuming %s: %d trials in the store, %d updates done",
                   self.out_dir, done_before, batch)
    best = max([t["reward"] for t in self.store.trials("ok")],
               default=-math.inf)
    consecutive_failures = self._trailing_failures()
    t_start = time.time()
    eval_seconds = 0.0
    evaluated = 0
    while batch * s.walks_per_update < s.max_trials:
      first_id = batch * s.walks_per_update
      n = min(s.walks_per_update, s.max_trials - first_id)
      walks = self.algorithm.propose(n)
      rewards = []
      for i, walk in enumerate(walks):
        trial_id = first_id + i
        row = self.store.trial(trial_id)
        if row is not None:  # finished before an interruption: reuse it
          if tuple(row["walk"]) != tuple(walk):
            logging.warning("trial %d: the resumed controller proposed %s, "
                            "the store holds %s; using the stored trial",
                            trial_id, walk, row["walk"])
          walks[i] = tuple(row["walk"])
        else:
          t0 = time.time()
          row = self._evaluate(walk, trial_id, batch)
          eval_seconds += time.time() - t0
          evaluated += 1
          self._log_trial(row, best, t_start, evaluated)
        if row["status"] == "ok":
          best = max(best, row["reward"])
          consecutive_failures = 0
          rewards.append(row["reward"])
        else:
          consecutive_failures += 1
          rewards.append(s.failure_reward)
          if consecutive_failures >= s.max_consecutive_failures:
            raise SearchStopped(
                f"{consecutive_failures} consecutive trials failed (limit "
                f"--max_consecutive_failures={s.max_consecutive_failures}); "
                f"last reason: {row['reason']}. Finished trials are in "
                f"{self.store.path}")
      self.algorithm.update(walks, rewards)
      batch += 1
      self.algorithm.save(self.checkpoint_path)
    wall = time.time() - t_start
    timing = {"wall_s": wall, "evaluate_s": eval_seconds,
              "trials_evaluated": evaluated,
              "outside_evaluation_share": (wall - eval_seconds) / wall
              if wall > 0 else 0.0}
    self.store.set_meta("last_run_timing", timing)
    if self._writer is not None:
      self._writer.flush()
    return timing

  def _trailing_failures(self) -> int:
    n = 0
    for row in reversed(self.store.trials()):
      if row["status"] == "ok":
        break
      n += 1
    return n

  def _evaluate(self, walk, trial_id: int, batch: int) -> Dict:
    started = time.time()
    seed = self.settings.seed + trial_id
    try:
      config = self.space.decode(walk)
    except GraphNasError as e:
      config, result = {}, EvalResult("failed", reason=f"decode: {e}")
    else:
      try:
        result = self.evaluator.evaluate(config, trial_id, seed)
      except GraphNasError:
        raise  # bad settings or a missing dataset: stop, don't blame a child
      except Exception as e:  # a crashing child is a result, not a crash
        result = EvalResult("failed", reason=f"{type(e).__name__}: {e}",
                            metrics={"traceback": traceback.format_exc(
                                limit=5)})
      if result.status == "ok" and (result.reward is None or
                                    not math.isfinite(result.reward)):
        result = EvalResult("failed", reason=f"non-finite reward "
                            f"{result.reward}", metrics=result.metrics)
    self.store.add_trial(trial_id=trial_id, batch=batch, walk=walk,
                         config=config, status=result.status,
                         reward=result.reward if result.status == "ok"
                         else None, seed=seed, started=started,
                         reason=result.reason, metrics=result.metrics)
    return self.store.trial(trial_id)

  def _summary_writer(self):
    if self._writer is None:
      import tensorflow as tf
      self._writer = tf.summary.create_file_writer(
          os.path.join(self.out_dir, "tensorboard"))
    return self._writer

  def _log_trial(self, row, best_before, t_start, evaluated):
    s = self.settings
    tid = row["trial_id"]
    ok = row["status"] == "ok"
    best = max(best_before, row["reward"]) if ok else best_before
    per_trial = (time.time() - t_start) / max(evaluated, 1)
    eta = per_trial * (s.max_trials - tid - 1)
    if tid % s.log_every == 0 or not ok or tid == s.max_trials - 1:
      what = (f"reward {row['reward']:.4f}" if ok
              else f"FAILED ({row['reason'][:120]})")
      logging.info("trial %d/%d %s  best %.4f  %.1fs  ETA %s", tid + 1,
                   s.max_trials, what, best, row["seconds"],
                   _fmt_duration(eta))
    import tensorflow as tf
    with self._summary_writer().as_default(step=tid):
      if ok:
        tf.summary.scalar("reward", row["reward"])
      if math.isfinite(best):
        tf.summary.scalar("best_reward", best)
      for key in ("val_accuracy", "flops", "params"):
        if key in row["metrics"]:
          tf.summary.scalar(key, float(row["metrics"][key]))
      tf.summary.scalar("failed", 0.0 if ok else 1.0)

  # ------------------------------------------------------------- finish
  def finalize(self, top: int = 10, retrain: bool = True) -> Dict:
    """Top table, plot, best architecture JSON, retrained best child."""
    from graph_nas import report
    rows = self.store.best(top)
    if not rows:
      raise SearchStopped(f"no successful trial in {self.store.path}")
    table = report.top_table(rows)
    with open(os.path.join(self.out_dir, "top_trials.md"), "w",
              encoding="utf-8") as f:
      f.write(table + "\n")
    report.plot_runs([self.out_dir], os.path.join(self.out_dir,
                                                  "rewards.png"))
    best = rows[0]
    best_info = {"trial_id": best["trial_id"], "reward": best["reward"],
                 "walk": list(best["walk"]), "config": best["config"],
                 "metrics": best["metrics"], "space": self.space.source}
    with open(os.path.join(self.out_dir, "best_architecture.json"), "w",
              encoding="utf-8") as f:
      json.dump(best_info, f, indent=2, default=str)
    final = {}
    if retrain and hasattr(self.evaluator, "finalize"):
      final = self.evaluator.finalize(best["config"], os.path.join(
          self.out_dir, "best_child"), self.settings.seed) or {}
      if final:
        self.store.set_meta("best_child", final)
    return {"table": table, "best": best_info, "final": final}

  def close(self):
    if self._writer is not None:
      self._writer.close()
    self.store.close()
