"""Executors: where children are evaluated (in-process, process pool, Ray).

All three share one small interface used by the search loop:

  submit(job) -> None      start evaluating a TrialJob
  wait_any() -> Finished   block until one submitted job finishes
  capacity                 how many jobs may run at once
  shutdown()

- ``InProcessExecutor`` (default): one child at a time in the driver; no
  extra dependency.
- ``ProcessPoolExecutor``: each child in a fresh process (one task per
  process), so TensorFlow memory is returned to the OS between children.
- ``RayExecutor``: each child a Ray task with its CPUs/GPUs given by flags,
  on a local or remote Ray cluster (``pip install .[ray]``). A worker killed
  mid-trial is retried once (``retries=1``) or the trial is recorded as
  failed (``retries=0``).

Evaluators travel to workers by pickling, so they must be plain objects
(ToyEvaluator, ChildEvaluator are). The driver alone writes the SQLite store.
"""

import collections
import concurrent.futures
import dataclasses
import multiprocessing
import time
import traceback
from typing import Any, Deque, Dict, Optional, Tuple

from graph_nas.errors import GraphNasError


@dataclasses.dataclass
class TrialJob:
  """One architecture to evaluate."""
  key: int  # the driver's handle (a trial id or a proposal number)
  walk: Tuple[int, ...]
  config: dict
  seed: int
  trial_id: int = -1
  proposed_at_update: int = 0


@dataclasses.dataclass
class Finished:
  job: TrialJob
  status: str
  reward: Optional[float]
  metrics: Dict
  reason: str
  started: float
  finished: float
  fatal: bool = False  # a settings error: the search must stop


def evaluate_safely(evaluator, job: TrialJob) -> Finished:
  """Runs evaluator.evaluate; any exception becomes a failed result."""
  import math
  started = time.time()
  fatal = False
  try:
    r = evaluator.evaluate(job.config, job.trial_id, job.seed)
    status, reward, metrics, reason = r.status, r.reward, r.metrics, r.reason
    if status == "ok" and (reward is None or not math.isfinite(reward)):
      status, reason = "failed", f"non-finite reward {reward}"
  except GraphNasError as e:
    status, reward, metrics, reason, fatal = "failed", None, {}, str(e), True
  except Exception as e:  # pylint: disable=broad-except
    status, reward, reason = "failed", None, f"{type(e).__name__}: {e}"
    metrics = {"traceback": traceback.format_exc(limit=5)}
  if status != "ok":
    reward = None
  return Finished(job, status, reward, dict(metrics), reason, started,
                  time.time(), fatal)


class InProcessExecutor:
  """Evaluates one job at a time in the calling process."""

  capacity = 1

  def __init__(self, evaluator):
    self.evaluator = evaluator
    self._queue: Deque[TrialJob] = collections.deque()

  def submit(self, job: TrialJob) -> None:
    self._queue.append(job)

  def wait_any(self) -> Finished:
    if not self._queue:
      raise GraphNasError("wait_any() with nothing submitted")
    return evaluate_safely(self.evaluator, self._queue.popleft())

  def in_flight(self) -> int:
    return len(self._queue)

  def shutdown(self):
    self._queue.clear()


def _pool_worker(evaluator, job):
  return evaluate_safely(evaluator, job)


class ProcessPoolExecutor:
  """One child per fresh process (memory freed between children)."""

  def __init__(self, evaluator, workers: int = 1):
    if workers < 1:
      raise GraphNasError(f"--workers must be >= 1, got {workers}")
    self.evaluator = evaluator
    self.capacity = workers
    ctx = multiprocessing.get_context("spawn")
    self._pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, max_tasks_per_child=1)
    self._futures: Dict[concurrent.futures.Future, TrialJob] = {}

  def submit(self, job):
    self._futures[self._pool.submit(_pool_worker, self.evaluator, job)] = job

  def wait_any(self):
    if not self._futures:
      raise GraphNasError("wait_any() with nothing submitted")
    done, _ = concurrent.futures.wait(
        self._futures, return_when=concurrent.futures.FIRST_COMPLETED)
    fut = next(iter(done))
    job = self._futures.pop(fut)
    try:
      return fut.result()
    except concurrent.futures.process.BrokenProcessPool as e:
      # The worker died (killed, out of memory): the pool is unusable.
      self._restart()
      now = time.time()
      return Finished(job, "failed", None, {}, f"worker process died: {e}",
                      now, now)

  def _restart(self):
    pending = list(self._futures.values())
    self._pool.shutdown(wait=False, cancel_futures=True)
    ctx = multiprocessing.get_context("spawn")
    self._pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=self.capacity, mp_context=ctx, max_tasks_per_child=1)
    self._futures = {}
    for job in pending:
      self.submit(job)

  def in_flight(self):
    return len(self._futures)

  def shutdown(self):
    self._pool.shutdown(wait=False, cancel_futures=True)


RAY_INSTALL_HINT = ("Ray is not installed: `pip install .[ray]` (or "
                    "`pip install ray`), or use "
                    "--executor=inprocess / --executor=process")


class RayExecutor:
  """Each child a Ray task; see the module docstring."""

  def __init__(self, evaluator, *, address: Optional[str] = None,
               workers: int = 1, cpus_per_child: float = 1.0,
               gpus_per_child: float = 0.0, retries: int = 1,
               init_kwargs: Optional[Dict[str, Any]] = None):
    try:
      import ray
    except ImportError:
      raise GraphNasError(RAY_INSTALL_HINT) from None
    self._ray = ray
    if not ray.is_initialized():
      kwargs = dict(init_kwargs or {})
      if address:
        kwargs["address"] = address
      kwargs.setdefault("include_dashboard", False)
      kwargs.setdefault("log_to_driver", False)
      try:
        ray.init(**kwargs)
      except (ConnectionError, RuntimeError, ValueError) as e:
        raise GraphNasError(f"cannot connect to the Ray cluster at "
                            f"--ray_address={address}: {e}") from None
    self.capacity = workers
    self._remote = ray.remote(num_cpus=cpus_per_child,
                              num_gpus=gpus_per_child,
                              max_retries=retries,
                              retry_exceptions=False)(_pool_worker)
    self._evaluator_ref = ray.put(evaluator)
    self._refs: Dict[Any, TrialJob] = {}

  def submit(self, job):
    self._refs[self._remote.remote(self._evaluator_ref, job)] = job

  def wait_any(self):
    if not self._refs:
      raise GraphNasError("wait_any() with nothing submitted")
    ray = self._ray
    ready, _ = ray.wait(list(self._refs), num_returns=1)
    ref = ready[0]
    job = self._refs.pop(ref)
    try:
      return ray.get(ref)
    except (ray.exceptions.WorkerCrashedError,
            ray.exceptions.RayTaskError,
            ray.exceptions.TaskCancelledError) as e:
      now = time.time()
      return Finished(job, "failed", None, {},
                      f"Ray worker lost: {type(e).__name__}: "
                      f"{str(e).splitlines()[0][:300]}", now, now)

  def in_flight(self):
    return len(self._refs)

  def shutdown(self):
    for ref in list(self._refs):
      self._ray.cancel(ref, force=True)
    self._refs.clear()


EXECUTORS = ("inprocess", "process", "ray")


def make_executor(name: str, evaluator, **kwargs):
  if name == "inprocess":
    return InProcessExecutor(evaluator)
  if name == "process":
    return ProcessPoolExecutor(evaluator, workers=kwargs.get("workers", 1))
  if name == "ray":
    return RayExecutor(evaluator, **kwargs)
  raise GraphNasError(f"unknown executor '{name}' (known: "
                      f"{', '.join(EXECUTORS)})")
