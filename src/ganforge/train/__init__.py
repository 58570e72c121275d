"""Training: the loop, its state, checkpoints and callbacks."""

from ganforge.train.callbacks import Callback, MetricsLog, ProgressBar
from ganforge.train.checkpoint import load_checkpoint, save_checkpoint
from ganforge.train.state import TrainState
from ganforge.train.trainer import StepResult, Trainer

__all__ = ["Callback", "MetricsLog", "ProgressBar", "StepResult", "TrainState", "Trainer",
           "load_checkpoint", "save_checkpoint"]
