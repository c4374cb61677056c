"""What to try and how the search runs: the loop and everything it talks to.

| module | what it holds |
|---|---|
| `loop` | the search loop (propose, evaluate, store, update, checkpoint) |
| `observers` | what watches the loop: the hooks and the progress log (the front ends attach graph_nas.report.observers: TensorBoard / HParams, the reports) |
| `checkpoint` | the algorithm-state file (arrays + JSON), written and read once |
| `settings` | every search, algorithm and executor setting, declared once |
| `assemble` | the one place a search is put together from its settings |
| `algorithms` | one module per searcher behind `Algorithm`: regularized evolution (with its population and mutation) and random search in numpy, REINFORCE and PQT in TensorFlow |
| `controller`, `losses`, `priority_queue` | the learning algorithms' LSTM controller, their one loss, PQT's queue |
| `evaluators`, `tasks` | config -> reward (toy tasks, child training, user functions) |
| `executors` | in-process, process-pool and Ray evaluation |
| `store`, `run_lock`, `run_folder` | the SQLite trial store, one search per folder, the folder's file names |

`graph_nas.search.Search`, `SearchSettings`, `DB_NAME`, ... (the loop's
names) resolve lazily, so `graph_nas.search.settings` imports without
TensorFlow. The result type is `graph_nas.results.EvalResult` (also
`graph_nas.search.results`); `graph_nas.search.evolution` re-exports
`algorithms.evolution`'s population and mutation. Nothing here imports
graph_nas.report.
"""


from graph_nas._lazy import lend

__getattr__ = lend(__name__, __file__, "loop")
