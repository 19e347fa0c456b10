"""Named failpoints: kill the process at a chosen moment, for the fault tests.

``SHOPFLOW_FAILPOINTS=publish.after_snapshot,...`` makes :func:`failpoint` SIGKILL the
process when execution reaches one of the named points, exactly like ``kill -9`` or a power
cut would. Unset (production), :func:`failpoint` is a dictionary-free string check.
"""

from __future__ import annotations

import os
import signal

ENV = "SHOPFLOW_FAILPOINTS"


def failpoint(name: str) -> None:
    """SIGKILL this process if ``name`` is listed in ``$SHOPFLOW_FAILPOINTS``."""
    names = os.environ.get(ENV)
    if names and name in names.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
