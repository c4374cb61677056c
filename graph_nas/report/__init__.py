"""What a search shows: tables, plots, HTML, DOT, HParams.

| module | what it holds |
|---|---|
| `tables` | `write_run_reports` and the names the package lends (the command: `graph_nas.cli.report`) |
| `trials` | reading, ranking and tabulating a run's trials |
| `plots` | the reward and Pareto figures |
| `html` | the self-contained HTML report |
| `dot` | Graphviz export of a space and of a run's learned policy |
| `policy` | a run's policy read from its checkpoint |
| `hparams` | TensorBoard HParams sessions, one per trial |
| `observers` | what a run writes as it goes (TensorBoard / HParams, the reports at finalize): the front ends attach them to the search |

`graph_nas.report.run`, `write_run_reports`, ... (the tables' names)
resolve lazily; `python -m graph_nas.report` runs the command.
"""


from graph_nas._lazy import lend

__getattr__ = lend(__name__, __file__, "tables")
