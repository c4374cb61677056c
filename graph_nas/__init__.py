"""graph-nas: neural architecture search over graph search spaces."""

from graph_nas.errors import GraphNasError, SpaceWarning

__version__ = "0.1.0"
__all__ = ["GraphNasError", "SpaceWarning", "__version__"]
