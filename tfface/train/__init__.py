"""Training: one trainer per regime (:mod:`.trainer`), callbacks, and :func:`run`."""

from tfface.train.run import RunResult, run

__all__ = ["run", "RunResult"]
