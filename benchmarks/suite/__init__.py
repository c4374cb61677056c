"""The search-quality suite's parts (`python -m benchmarks.search_quality`).

- `tasks`: the suite's tasks, each a space, a reward read from the decoded
  config and its known optimum (the paper's toy tasks, NAS-Bench-Graph);
- `nas_bench_graph`: NAS-Bench-Graph's look-up tables as rewards, in a
  linear and a graph encoding (needs the `bench` extra);
- `tpe`: Optuna's TPE behind graph_nas' Algorithm interface (`bench` extra);
- `driver`: one search of a look-up reward, trial by trial;
- `stats`: best-so-far curves, paired bootstrap intervals, mean ranks.

They live with the benchmarks, outside the installed package: the core
package imports nothing from here, and the tests import them as
`benchmarks.suite` from the repository root (tests/test_bench*.py).
Optuna and nas-bench-graph are imported only when a task or method needs
them.
"""
