"""Training: one trainer per regime (:mod:`.trainer`), callbacks, and :func:`run`."""

from tfface.train.runner import RunResult, run

__all__ = ["run", "RunResult"]
