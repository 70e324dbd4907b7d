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
