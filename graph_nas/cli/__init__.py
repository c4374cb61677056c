"""The command-line front ends: the launcher (launch), the reports (report),
the space drawn as Graphviz DOT (dot), the toy experiment runner
(experiment), their shared --help page (help) and the launcher's projection
of a search's time (projection). `python -m graph_nas.launch`, `python -m
graph_nas.report`, `python -m graph_nas.dot` and `python -m
graph_nas.experiment` keep their names (small modules that run these)."""
