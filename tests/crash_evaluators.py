"""Evaluators for the error-naming tests, given to the launcher as
--evaluator=tests.crash_evaluators:NAME.

Like tests/executor_evaluators.py, this module imports neither TensorFlow
nor graph_nas.search, so a process-executor worker starts quickly even on a
busy machine.
"""


def always_fails(config):
  """A reward function whose every trial fails."""
  del config
  raise RuntimeError("this reward always fails")
