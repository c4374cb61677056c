"""Executors: where children are evaluated (in-process, process pool, Ray).

All three share one small interface used by the search loop:

  submit(job) -> None      start evaluating a TrialJob
  wait_any() -> Finished   block until one submitted job finishes
  capacity                 how many jobs may run at once
  ask                      set by the loop: Report -> bool (go on?)
  shutdown()

Early stopping (graph_nas.search.halving). A job with rungs gives its
evaluator a `Trial` to report through; each report travels to the driver
while the child waits, and the driver's answer (go on or stop) travels
back: a direct call in process, the trial's pipe (both ways) for a
process of the pool, a small Ray actor (a mailbox the driver polls while
it waits) for a Ray task. A job without rungs runs exactly as before.

- ``InProcessExecutor`` (default): one child at a time in the driver; no
  extra dependency.
- ``ProcessPoolExecutor``: each child in a fresh process of its own (one
  trial per process), so TensorFlow memory is returned to the OS between
  children, and a process that dies fails exactly its own trial (recorded
  as failed, not retried; the other trials running beside it go on). A
  trial's process ends as soon as the driver dies, SIGKILL included (no
  orphan goes on training); a resumed search runs that trial again.
- ``RayExecutor``: each child a Ray task with its CPUs/GPUs given by flags,
  on a local or remote Ray cluster (``pip install .[ray]``). A worker killed
  mid-trial is retried once (``retries=1``) or the trial is recorded as
  failed (``retries=0``).

Evaluators travel to workers by pickling, so they must be plain objects
(FunctionEvaluator, ChildEvaluator are). The driver alone writes the SQLite store.
"""

import atexit
import collections
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
import traceback
import weakref
from typing import Any, Deque, Dict, List, Optional, Tuple

from graph_nas.errors import GraphNasError, SettingError, SetupError


@dataclasses.dataclass
class TrialJob:
  """One architecture to evaluate."""
  key: int  # the driver's handle (a trial id or a proposal number)
  walk: Tuple[int, ...]
  config: Optional[dict]  # None: the walk does not decode (see reason)
  seed: int
  trial_id: int = -1
  proposed_at_update: int = 0
  # Why the job is settled without an evaluation (the decode error of a
  # walk that does not decode); "" for a job to evaluate.
  reason: str = ""
  # Early stopping: the rung fractions (() for none) and the job's stable
  # name in the rung records (graph_nas.search.halving).
  rungs: Tuple[float, ...] = ()
  name: str = ""


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


def takes_part(evaluator) -> bool:
  """Whether an evaluator reports at rungs: its `takes_trial` attribute,
  else whether its evaluate() has a `trial` parameter."""
  flag = getattr(evaluator, "takes_trial", None)
  if flag is not None:
    return bool(flag)
  from graph_nas.search import halving
  return halving.takes_trial(evaluator.evaluate)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def own_line(tb) -> str:
  """" (at file:line in function)" of the innermost frame of a traceback
  that is the user's code: not graph_nas', not an installed library's, not
  Python's own; "" when there is none."""
  found = None
  for frame, line in traceback.walk_tb(tb):
    path = os.path.abspath(frame.f_code.co_filename)
    if (path.startswith(_PACKAGE_DIR + os.sep) or "site-packages" in path
        or path.startswith(os.path.dirname(os.__file__) + os.sep) or
        path.startswith("<")):
      continue
    found = (path, line, frame.f_code.co_name)
  if found is None:
    return ""
  path, line, name = found
  try:
    path = os.path.relpath(path)
  except ValueError:
    pass
  return f" (at {path}:{line} in {name})"


def evaluate_safely(evaluator, job: TrialJob, ask=None) -> Finished:
  """Runs evaluator.evaluate; any exception becomes a failed result.

  ask: Report -> bool, the driver's rung decisions (a job with rungs and
  an evaluator that takes part); the halving's outcome (rung reached,
  budget share, scores) joins the metrics."""
  import math
  started = time.time()
  fatal = False
  trial = None
  try:
    if job.rungs and takes_part(evaluator):
      from graph_nas.search import halving
      trial = halving.Trial(job.name, job.rungs, ask or (lambda r: True),
                            job.trial_id, job.seed)
      r = evaluator.evaluate(job.config, job.trial_id, job.seed, trial=trial)
    else:
      r = evaluator.evaluate(job.config, job.trial_id, job.seed)
    status, reward, metrics, reason = r.status, r.reward, r.metrics, r.reason
    if status == "ok" and (reward is None or not math.isfinite(reward)):
      status, reason = "failed", f"non-finite reward {reward}"
  except SetupError as e:
    status, reward, metrics, reason, fatal = "failed", None, {}, str(e), True
  except Exception as e:  # pylint: disable=broad-except
    status, reward = "failed", None
    reason = f"{type(e).__name__}: {e}{own_line(e.__traceback__)}"
    metrics = {"traceback": traceback.format_exc(limit=5)}
  if status != "ok":
    reward = None
  metrics = dict(metrics)
  if trial is not None and status == "ok":
    metrics.update(trial.outcome())
  return Finished(job, status, reward, metrics, reason, started,
                  time.time(), fatal)


class InProcessExecutor:
  """Evaluates one job at a time in the calling process."""

  capacity = 1

  def __init__(self, evaluator):
    self.evaluator = evaluator
    self.ask = None
    self._queue: Deque[TrialJob] = collections.deque()

  def submit(self, job: TrialJob) -> None:
    self._queue.append(job)

  def wait_any(self) -> Finished:
    if not self._queue:
      raise GraphNasError("wait_any() with nothing submitted")
    return evaluate_safely(self.evaluator, self._queue.popleft(), self.ask)

  def in_flight(self) -> int:
    return len(self._queue)

  def shutdown(self):
    self._queue.clear()


# Exit status of a trial's process that ended because the driver died.
DRIVER_GONE_EXIT = 75


def _end_with_the_driver():
  """Ends this trial's process as soon as the driver is gone (SIGKILL
  included): nothing could receive its result any more, and a child left
  training would hold CPUs, memory and accelerators for nothing.

  multiprocessing gives a spawned process a pipe from its parent that
  reaches end-of-file when the parent's end closes, i.e. when the parent
  dies (or drops the process object, after the result came). A daemon
  thread waits for that and ends the process at once, whatever its main
  thread is doing (TensorFlow releases the GIL while it computes).
  """
  parent = multiprocessing.parent_process()
  if parent is None:  # not started by multiprocessing
    return

  def watch():
    parent.join()
    os._exit(DRIVER_GONE_EXIT)  # pylint: disable=protected-access

  threading.Thread(target=watch, name="graph_nas-driver-watch",
                   daemon=True).start()


def _ask_over(conn):
  """A worker's rung question over its pipe: send the report, wait for
  the driver's answer."""
  def ask(report):
    conn.send(("report", report))
    return bool(conn.recv())
  return ask


def _process_worker(evaluator, conn, limit: int):
  """Body of a worker process: takes trial jobs from its pipe, evaluates
  each and sends its result, until `limit` trials (0: no limit), the
  driver's None, or the end of the pipe."""
  _end_with_the_driver()
  done = 0
  while limit <= 0 or done < limit:
    try:
      job = conn.recv()
    except (EOFError, OSError):
      break
    if job is None:
      break
    result = evaluate_safely(evaluator, job, _ask_over(conn) if job.rungs
                             else None)
    done += 1
    try:
      conn.send(result)
    except Exception as e:  # pylint: disable=broad-except
      # Metrics that do not pickle: still a result, not a dead worker.
      now = time.time()
      conn.send(Finished(job, "failed", None, {},
                         f"the trial's result cannot be sent to the driver: "
                         f"{type(e).__name__}: {e}", result.started, now,
                         result.fatal))
  conn.close()


THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                    "OMP_NUM_THREADS")


@contextlib.contextmanager
def _thread_environment(threads: int):
  """The environment a worker process is started with: TensorFlow on
  `threads` threads, unless the driver's environment says otherwise (a
  spawned process copies the environment when it starts; the driver's own
  TensorFlow, already running or not, keeps its threads)."""
  if os.environ.get("TF_NUM_INTRAOP_THREADS"):
    yield
    return
  saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
  os.environ.update({k: str(threads) for k in THREAD_VARIABLES})
  try:
    yield
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def _death_reason(exitcode) -> str:
  if exitcode is None:
    return ("worker process died: it closed its result pipe without a "
            "result (stopped)")
  if exitcode < 0:
    try:
      name = signal.Signals(-exitcode).name
    except ValueError:
      name = f"signal {-exitcode}"
    return f"worker process died: killed by {name}"
  return (f"worker process died with exit code {exitcode} before returning "
          "a result")


@dataclasses.dataclass
class _Worker:
  process: Any
  conn: Any  # the driver's end of its pipe (both ways)
  trials: int = 0  # trials handed to it


@dataclasses.dataclass
class _Running:
  job: TrialJob
  process: Any
  conn: Any
  started: float
  worker: Optional[_Worker] = None


class ProcessPoolExecutor:
  """Children in worker processes, at most ``workers`` at once.

  A worker process runs `trials_per_worker` trials (1, the default: a
  fresh process per child, its memory given back when it ends; 0: no
  limit, so TensorFlow and the data are loaded once per worker instead of
  once per child, seconds per child) and is then replaced by a fresh one.
  Jobs and results go over a pipe per worker. A process that ends without
  sending its trial's result (killed, out of memory, a crash in native
  code) fails exactly that trial: the other trials running beside it go on
  untouched and nothing is retried.

  Each process runs TensorFlow on `threads` threads (intra- and inter-op;
  0: the machine's cores shared among the workers, at least 1 each), set
  in its environment when it starts; $TF_NUM_INTRAOP_THREADS, when the
  driver has it, is left to decide. On 2 cores, two copies of one demo
  child on one thread each trained 1.46x the images per second of one on
  both, though the demo's whole search was not faster with two workers
  (benchmarks/results/cifar_cpu_demo.md).
  """

  def __init__(self, evaluator, workers: int = 1, threads: int = 0,
               trials_per_worker: int = 1):
    if workers < 1:
      raise SettingError("workers", workers, "must be >= 1")
    if threads < 0:
      raise SettingError("worker_threads", threads, "must be >= 0")
    if trials_per_worker < 0:
      raise SettingError("trials_per_worker", trials_per_worker,
                         "must be >= 0 (0: no limit)")
    self.evaluator = evaluator
    self.capacity = workers
    self.threads = int(threads) or max(1, (os.cpu_count() or 1) // workers)
    self.limit = int(trials_per_worker)
    self._idle: List[_Worker] = []
    self.ask = None
    self._ctx = multiprocessing.get_context("spawn")
    self._queue: Deque[TrialJob] = collections.deque()
    self._running: List[_Running] = []
    self._exiting: List[Any] = []  # processes that sent their result
    _LIVE_POOLS.add(self)

  def submit(self, job):
    self._queue.append(job)
    self._start_queued()

  def _spawn(self, job) -> _Worker:
    ours, theirs = self._ctx.Pipe(duplex=True)
    proc = self._ctx.Process(target=_process_worker,
                             args=(self.evaluator, theirs, self.limit),
                             name=f"graph_nas-worker-{job.key}")
    try:
      with _thread_environment(self.threads):
        proc.start()
    except (pickle.PicklingError, TypeError, AttributeError) as e:
      ours.close()
      raise GraphNasError(f"the evaluator cannot be sent to a worker "
                          f"process (it must pickle): "
                          f"{type(e).__name__}: {e}") from None
    finally:
      theirs.close()  # the child holds the only other end: EOF if it dies
    return _Worker(proc, ours)

  def _retire(self, worker: _Worker):
    """Lets a worker end: the end of its pipe ends its loop."""
    worker.conn.close()
    self._exiting.append(worker.process)

  def _start_queued(self):
    self._reap()
    while self._queue and len(self._running) < self.capacity:
      job = self._queue.popleft()
      worker = None
      while self._idle and worker is None:
        candidate = self._idle.pop()
        if candidate.process.is_alive():
          worker = candidate
        else:
          self._retire(candidate)
      worker = worker or self._spawn(job)
      try:
        worker.conn.send(job)
      except (BrokenPipeError, ConnectionResetError, EOFError):
        # It died while idle: a fresh one.
        self._retire(worker)
        worker = self._spawn(job)
        worker.conn.send(job)
      except (pickle.PicklingError, TypeError, AttributeError) as e:
        self._retire(worker)
        raise GraphNasError(f"trial {job.key} cannot be sent to a worker "
                            f"process (it must pickle): "
                            f"{type(e).__name__}: {e}") from None
      worker.trials += 1
      self._running.append(_Running(job, worker.process, worker.conn,
                                    time.time(), worker))

  def _release(self, r: _Running):
    """r's worker sent its result: idle again, or retired at its limit."""
    if self.limit <= 0 or r.worker.trials < self.limit:
      self._idle.append(r.worker)
    else:
      self._retire(r.worker)

  def _reap(self):
    """Joins the processes that sent their result and have exited since."""
    still = []
    for p in self._exiting:
      if p.exitcode is None:  # a non-blocking poll
        still.append(p)
      else:
        p.join()
    self._exiting = still

  def wait_any(self):
    if not self._running and not self._queue:
      raise GraphNasError("wait_any() with nothing submitted")
    self._start_queued()
    while True:
      waitables = {}
      for r in self._running:
        waitables[r.conn] = r
        waitables[r.process.sentinel] = r
      ready = multiprocessing.connection.wait(list(waitables))
      # Several may be ready at once: the earliest submitted first.
      ready_runs = {id(waitables[w]) for w in ready}
      for r in list(self._running):
        if id(r) in ready_runs:
          finished = self._collect(r)
          if finished is not None:
            self._running.remove(r)
            self._start_queued()
            return finished

  def _collect(self, r: _Running) -> Optional[Finished]:
    """The result of r if its process sent one or died; None otherwise."""
    if r.conn.poll():
      try:
        result = r.conn.recv()
        if isinstance(result, tuple) and result and result[0] == "report":
          self._answer(r, result[1])
          return None
      except (EOFError, OSError):
        pass  # died before or while writing its result
      except Exception as e:  # pylint: disable=broad-except
        # Sent, but does not unpickle here: the trial failed, the process
        # ends normally.
        self._retire(r.worker)
        return Finished(r.job, "failed", None, {},
                        f"the trial's result cannot be read: "
                        f"{type(e).__name__}: {e}", r.started, time.time())
      else:
        self._release(r)
        return result
    elif r.process.is_alive():
      return None  # a spurious wake-up
    r.conn.close()
    r.process.join(timeout=5)
    if r.process.is_alive():  # closed its pipe but lives on: stop it
      reason = _death_reason(None)
      r.process.kill()
      r.process.join()
    else:
      reason = _death_reason(r.process.exitcode)
    return Finished(r.job, "failed", None, {}, reason, r.started,
                    time.time())

  def _answer(self, r: _Running, report):
    """The driver's rung decision, sent back to the waiting child."""
    go_on = self.ask(report) if self.ask is not None else True
    try:
      r.conn.send(bool(go_on))
    except (BrokenPipeError, OSError):
      pass  # it died meanwhile: its sentinel tells

  def in_flight(self):
    return len(self._queue) + len(self._running)

  def shutdown(self):
    """Stops every trial still running (their results are dropped)."""
    self._queue.clear()
    procs = ([r.process for r in self._running] +
             [w.process for w in self._idle] + self._exiting)
    for r in self._running:
      r.conn.close()
    for w in self._idle:
      w.conn.close()
    self._running = []
    self._idle = []
    self._exiting = []
    for p in procs:
      if p.is_alive():
        p.terminate()
    deadline = time.time() + 5
    for p in procs:
      p.join(timeout=max(0.0, deadline - time.time()))
      if p.is_alive():
        p.kill()
        p.join()
    _LIVE_POOLS.discard(self)


# Trials still running when the driver exits are stopped, not waited for
# (multiprocessing would otherwise join them at exit).
_LIVE_POOLS: "weakref.WeakSet[ProcessPoolExecutor]" = weakref.WeakSet()


@atexit.register
def _shutdown_live_pools():
  for pool in list(_LIVE_POOLS):
    pool.shutdown()


RAY_INSTALL_HINT = ("Ray is not installed: `pip install .[ray]` (or "
                    "`pip install ray`), or use another executor: "
                    "inprocess or process")


class _Mailbox:
  """Rung reports of Ray tasks and the driver's answers (a Ray actor)."""

  def __init__(self):
    self._reports, self._answers = [], {}

  def post(self, report):
    self._reports.append(report)

  def take(self):
    reports, self._reports = self._reports, []
    return reports

  def answer(self, key, rung, go_on):
    self._answers[(key, rung)] = go_on

  def answer_for(self, key, rung):
    return self._answers.pop((key, rung), None)


def _ray_worker(evaluator, job, mailbox):
  """A Ray task: evaluate; rung reports go through the mailbox."""
  ask = None
  if mailbox is not None and job.rungs:
    import ray

    def ask(report):
      ray.get(mailbox.post.remote(report))
      while True:
        answer = ray.get(mailbox.answer_for.remote(report.key, report.rung))
        if answer is not None:
          return bool(answer)
        time.sleep(0.02)
  return evaluate_safely(evaluator, job, ask)


class RayExecutor:
  """Each child a Ray task; see the module docstring."""

  def __init__(self, evaluator, *, address: Optional[str] = None,
               workers: int = 1, cpus_per_child: float = 1.0,
               gpus_per_child: float = 0.0, retries: int = 1,
               init_kwargs: Optional[Dict[str, Any]] = None):
    if workers < 1:
      raise SettingError("workers", workers, "must be >= 1")
    if retries < 0:
      raise SettingError("retries", retries, "must be >= 0")
    try:
      import ray
    except ImportError:
      raise SettingError("executor", "ray", RAY_INSTALL_HINT) from None
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
        raise SettingError("address", address, f"cannot connect to the "
                           f"Ray cluster: {e}") from None
    self.capacity = workers
    self.ask = None
    self._remote = ray.remote(num_cpus=cpus_per_child,
                              num_gpus=gpus_per_child,
                              max_retries=retries,
                              retry_exceptions=False)(_ray_worker)
    self._evaluator_ref = ray.put(evaluator)
    self._refs: Dict[Any, TrialJob] = {}
    self._mailbox = None  # made for the first job with rungs

  def submit(self, job):
    mailbox = None
    if job.rungs:
      if self._mailbox is None:
        self._mailbox = self._ray.remote(num_cpus=0)(_Mailbox).remote()
      mailbox = self._mailbox
    self._refs[self._remote.remote(self._evaluator_ref, job, mailbox)] = job

  def _answer_reports(self):
    ray = self._ray
    for report in ray.get(self._mailbox.take.remote()):
      go_on = self.ask(report) if self.ask is not None else True
      self._mailbox.answer.remote(report.key, report.rung, bool(go_on))

  def wait_any(self):
    if not self._refs:
      raise GraphNasError("wait_any() with nothing submitted")
    ray = self._ray
    if self._mailbox is None:
      ready, _ = ray.wait(list(self._refs), num_returns=1)
    else:  # answer the children's rung reports while waiting
      while True:
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=0.05)
        if ready:
          break
        self._answer_reports()
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
    return ProcessPoolExecutor(
        evaluator, workers=kwargs.get("workers", 1),
        threads=kwargs.get("threads", 0),
        trials_per_worker=kwargs.get("trials_per_worker", 1))
  if name == "ray":
    return RayExecutor(evaluator, **kwargs)
  raise SettingError("executor", name,
                     f"unknown executor (known: {', '.join(EXECUTORS)})")
