"""The search-quality suite's parts (benchmarks/search_quality.py).

- `tasks`: the suite's tasks, each a space, a reward read from the decoded
  config and its known optimum (the paper's toy tasks, NAS-Bench-Graph);
- `nas_bench_graph`: NAS-Bench-Graph's look-up tables as rewards, in a
  linear and a graph encoding (needs the `bench` extra);
- `tpe`: Optuna's TPE behind graph_nas' Algorithm interface (`bench` extra);
- `driver`: one search of a look-up reward, trial by trial;
- `stats`: best-so-far curves, paired bootstrap intervals, mean ranks.

Nothing here is imported by the core package; Optuna and nas-bench-graph
are imported only when a task or method needs them.
"""
