"""What every command line shares: the program name its ``--help`` shows.

The commands run two ways: as a module (``python -m pipelines.restore``) and, once the
package is installed, as the console script of ``pyproject.toml``
(``tfface-restore``). The usage line names the way the user actually typed.
"""

from __future__ import annotations

import os
import sys


def prog_name(module: str, script: str | None = None) -> str:
    """``script`` when the process was started as that console script (``sys.argv[0]``
    ends in it, with ``.exe`` or ``-script.py`` on Windows), else ``python -m module``."""
    started = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    for suffix in (".exe", "-script.py", "-script.pyw"):
        if started.lower().endswith(suffix):
            started = started[: -len(suffix)]
    if script and started == script:
        return script
    return f"python -m {module}"
