"""The reusable Keras child: the model, how it is trained, on what data.

| module | what it holds |
|---|---|
| `model` | the MnasNet-like Keras builder (MBConv + squeeze-and-excite; `graph_nas.child.build_child`) |
| `config` | a child config's keys, defaults, checks and presets (no Keras) |
| `cost` | parameters and multiply-adds of a built child |
| `block_args` | block arguments as plain data, MnasNet block strings |
| `settings` | TrainSettings: how children are trained and scored |
| `trainer` | the one child trainer of a search |
| `steps` | a child's traced train / evaluation functions |
| `progress` | a child's progress: ETA, progress lines, observers |
| `data` | tfds CIFAR-10 / ImageNet: splits, augmentation, where the data is |
| `optimizers`, `strategies` | the fused optimiser; tf.distribute strategies |

The model's names (`build_child`, `preset`, ...) resolve lazily from
`model`, so `graph_nas.child.settings` imports without TensorFlow.
"""


from graph_nas._lazy import lend

__getattr__ = lend(__name__, __file__, "model")
