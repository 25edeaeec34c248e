"""QR code images for Palabre: the `qr.code` action, registered like any third-party plugin.

`qrcode` and `pillow` are an extra (`pip install 'palabre[qr]'`); this module imports
without them, and the action says what to install when it runs.

Modules: png (drawing the code as PNG bytes), drawing (in a worker process, cached),
frames and worker (that process), code (the `qr.code` action).
"""

from __future__ import annotations

from palabre.actions import Action
from palabre.hookspecs import hookimpl
from palabre_qr.code import ACTION

__all__ = ["ACTION", "register_actions"]


@hookimpl
def register_actions() -> list[Action]:
    return [ACTION]
