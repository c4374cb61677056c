"""The one result type (`EvalResult`); its home is `graph_nas.results`."""

from graph_nas.results import EvalResult

__all__ = ["EvalResult"]
