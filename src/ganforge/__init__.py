"""ganforge: an out-of-the-box framework for generative adversarial networks on PyTorch.

    import ganforge
    cfg = ganforge.load_config("ring8", ["train.steps=2000"])
    ganforge.train(cfg, "runs/ring8")
    G = ganforge.load_generator("runs/ring8")
    x = G.sample(2500, seed=0)
"""

from ganforge.config import Config, config_from_dict, load_config
from ganforge.errors import CheckpointError, ConfigError, DataError, GanforgeError
from ganforge.run import LoadedRun, TrainedGenerator, load_generator, load_run, train
from ganforge.rundir import RunDir

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "Config", "ConfigError", "DataError", "GanforgeError", "LoadedRun",
    "RunDir", "TrainedGenerator", "__version__", "config_from_dict", "load_config", "load_generator", "load_run", "train",
]
