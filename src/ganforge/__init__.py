"""ganforge: an out-of-the-box framework for generative adversarial networks on PyTorch.

    import ganforge
    cfg = ganforge.load_config("ring8", ["train.steps=2000"])
    ganforge.train(cfg, "runs/ring8")
    G = ganforge.load_generator("runs/ring8")
    x = G.sample(2500, seed=0)

Components of your own: register them (``@ganforge.game.COSTS.register("my_cost")``) in a module and
import it; ``ganforge.load_plugins()`` imports the installed ``ganforge.plugins`` entry points and the
modules in ``GANFORGE_PLUGINS``, as the command line does at start.
"""

from ganforge.components import config_from_dict, load_config  # schema + registry check: typos fail here
from ganforge.config import Config
from ganforge.errors import CheckpointError, ConfigError, DataError, GanforgeError
from ganforge.registry import load_plugins
from ganforge.run import LoadedRun, TrainedGenerator, load_generator, load_run, train
from ganforge.rundir import RunDir

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "Config", "ConfigError", "DataError", "GanforgeError", "LoadedRun",
    "RunDir", "TrainedGenerator", "__version__", "config_from_dict", "load_config", "load_generator", "load_plugins",
    "load_run", "train",
]
