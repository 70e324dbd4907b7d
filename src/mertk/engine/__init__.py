"""The experiment engine: evaluation protocols, training, metrics, recipes and run directories.

Importing the package does not load torch: the trainer's names (:class:`~mertk.engine.train.FoldResult`,
:func:`~mertk.engine.train.evaluate`, :func:`~mertk.engine.train.train_folds`,
:func:`~mertk.engine.train.train_one_epoch`) are loaded from :mod:`mertk.engine.train` on first use.
"""

from .metrics import (
    MetricsError,
    format_metrics,
    megc_metrics,
    metrics_command,
    metrics_report,
    read_predictions,
)
from .protocols import (
    Fold,
    ProtocolError,
    classes_missing_from_train,
    inner_validation,
    leave_one_video_out,
    loso,
    lovo,
    official_splits,
)
from .recipe import Recipe, RecipeError, list_recipes, load_recipe  # importing registers the shipped recipes
from .trainconfig import TrainConfig, TrainError

_TRAINER = ("FoldResult", "evaluate", "train_folds", "train_one_epoch")


def __getattr__(name: str):
    if name in _TRAINER:
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
