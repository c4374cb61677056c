"""What to try and how the search runs: the loop and everything it talks to.

| module | what it holds |
|---|---|
| `loop` | the search loop (propose, evaluate, store, update, checkpoint) |
| `observers` | what watches the loop: the progress log, TensorBoard / HParams, the reports |
| `checkpoint` | the algorithm-state file (arrays + JSON), written and read once |
| `settings` | every search, algorithm and executor setting, declared once |
| `assemble` | the one place a search is put together from its settings |
| `algorithms`, `controller`, `losses`, `priority_queue` | REINFORCE, PQT, random search; the LSTM controller; the one loss; PQT's queue |
| `evaluators`, `tasks`, `results` | config -> reward (toy tasks, child training, user functions); the one result type |
| `executors` | in-process, process-pool and Ray evaluation |
| `store`, `run_lock`, `run_folder` | the SQLite trial store, one search per folder, the folder's file names |

`graph_nas.search.Search`, `SearchSettings`, `DB_NAME`, ... (the loop's
names) resolve lazily, so `graph_nas.search.settings` imports without
TensorFlow.
"""


from graph_nas._lazy import lend

__getattr__ = lend(__name__, __file__, "loop")
