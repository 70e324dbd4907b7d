"""One progress bar for every stage (preparation, training, tracking): rich when enabled, else nothing."""

from __future__ import annotations

from typing import Any, Callable


class ProgressBar:
    """Context manager yielding ``advance(k=1)``; a no-op when disabled or when ``total`` is 0."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label = enabled and total > 0, total, label

    def __enter__(self) -> Callable[..., None]:
        if not self.enabled:
            return lambda k=1: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total)
        return lambda k=1: self.bar.advance(task, k)

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.stop()
