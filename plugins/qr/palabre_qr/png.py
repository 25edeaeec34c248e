"""Draw a QR code as PNG bytes, with `qrcode` and `pillow` imported only when needed.

Error correction M survives a crease or a smudge; 10-pixel modules and the standard
4-module quiet zone let a cheap phone camera read the code off another phone's screen.
The same text always gives the same bytes: the version and mask are chosen by the text
alone, and the PNG is a 1-bit image with no timestamp.
"""

from __future__ import annotations

import io
import logging
from types import ModuleType

from palabre.errors import ActionError

log = logging.getLogger("palabre.qr")
INSTALL_HINT = "pip install 'palabre[qr]'"
BOX_SIZE = 10  # pixels per module
BORDER = 4  # modules of quiet zone, the minimum ISO/IEC 18004 asks for


def qr_png(text: str) -> bytes:
    """The PNG of a QR code holding `text`; ActionError when it cannot be drawn."""
    qrcode = load_qrcode()
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER
    )
    code.add_data(text.encode("utf-8"))
    try:
        code.make(fit=True)
    except (qrcode.exceptions.DataOverflowError, ValueError):  # qrcode 8 says "version 41"
        raise ActionError(
            f"qr.code: the text ({len(text)} characters) is too long for one QR code"
        ) from None
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def load_qrcode() -> ModuleType:
    """The qrcode package, with its Pillow image factory; ActionError naming the extra."""
    try:
        import qrcode
        import qrcode.constants
        import qrcode.exceptions
        import qrcode.image.pil
        from PIL import Image  # noqa: F401  (qrcode draws with Pillow, found only when drawing)
    except ImportError as exc:
        missing = f"qr.code needs the qrcode and pillow packages ({exc.name} is missing): "
        log.error("%s%s", missing, INSTALL_HINT)  # the contact only sees the flow's on_error
        raise ActionError(missing + INSTALL_HINT) from exc
    return qrcode
