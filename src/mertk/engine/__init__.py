"""The experiment engine: evaluation protocols, training, metrics, recipes and run directories."""

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
from .train import FoldResult, TrainConfig, TrainError, evaluate, train_folds, train_one_epoch
