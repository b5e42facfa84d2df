"""A test helper: run a call that might hang with a time limit."""

import threading


def run_bounded(fn, seconds: float = 30.0):
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) after ``seconds``."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"did not finish within {seconds} s (hang)"
    if "error" in box:
        raise box["error"]
    return box.get("value")
