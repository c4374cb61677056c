"""The one place a search is put together.

`assemble` builds a `graph_nas.search.Search` from a space, an evaluator,
an output folder and the three settings objects of graph_nas.search.settings:
the algorithm (with its per-algorithm defaults resolved), the executor,
and the run's record of its settings. The launcher, `graph_nas.api.search`
and the toy experiment runner are thin front ends over it; `run_search`
runs the assembled search to its end (the reports are written by the
observers the front end attached: graph_nas.report.observers).
"""

from typing import Any, Dict, Optional, Sequence

from graph_nas.search import settings as settings_lib
from graph_nas.search.settings import (AlgorithmSettings, ExecutorSettings, SearchSettings)


def assemble(space, evaluator, out_dir: str, *,
             search: SearchSettings = SearchSettings(),
             algorithm: AlgorithmSettings = AlgorithmSettings(),
             executor: ExecutorSettings = ExecutorSettings(),
             budget: Optional[Dict[str, Any]] = None,
             record: Optional[Dict[str, Any]] = None,
             scorer=None, observers: Sequence = ()):
  """A ready `Search` (not yet run) in `out_dir`.

  Args:
    space: a graph_nas.space.SearchSpace.
    evaluator: an object with evaluate(config, trial_id, seed).
    out_dir: the run's folder; a folder holding a search resumes it.
    search, algorithm, executor: the settings (graph_nas.search.settings).
    budget: what gives the evaluator's rewards their meaning (part of the
      run's identity: e.g. TrainSettings.budget_identity()).
    record: more entries of the run's record (run_info), e.g. the
      launcher's training flags.
    scorer: the screening's scorer when the settings do not name it (a
      user's function; graph_nas.search.screening).
    observers: told what the search does after its progress log
      (graph_nas.search.observers); a front end passes the reports'
      (graph_nas.report.observers.from_settings), which this package does
      not import.
  """
  from graph_nas.search import algorithms, executors
  from graph_nas import search as search_lib
  algorithm = algorithm.check().resolved()
  from graph_nas.search import screening  # pylint: disable=import-outside-toplevel
  search = screening.settle(search, algorithm.algorithm, evaluator)
  executor = executor.check()
  algo = algorithms.make_algorithm(algorithm.algorithm, space,
                                   seed=search.seed,
                                   **algorithm.algorithm_kwargs())
  if scorer is None and search.screen_features:
    # The features' module is imported before the run's folder is made: a
    # bad name is one line naming the setting, and no folder.
    scorer = screening.scorer_of(search, space, evaluator)
  ex = executors.make_executor(executor.executor, evaluator,
                               **executor.executor_kwargs())
  run_info = settings_lib.as_record(search, algorithm, executor)
  run_info["space"] = space.source
  run_info.update(record or {})
  try:
    return search_lib.Search(space, algo, evaluator, out_dir, search,
                             run_info=run_info, executor=ex, budget=budget,
                             scorer=scorer, observers=observers)
  except BaseException:
    ex.shutdown()
    raise


def run_search(job, *, retrain: bool = False) -> Dict[str, Any]:
  """Runs an assembled search to its end (closing it);
  {"timing", "result"} with result = Search.finalize(retrain=...)."""
  try:
    timing = job.run()
    result = job.finalize(retrain=retrain)
  finally:
    job.close()
  return {"timing": timing, "result": result}
