"""The frames between palabre_qr.drawing and its worker (palabre_qr.worker).

A frame is `HEADER`, a status byte and a length, then that many bytes. A request's status
is unused and its bytes are the text in UTF-8; an answer is DRAWN and the PNG, or FAILED
and a short reason with no personal data.
"""

from __future__ import annotations

import struct

HEADER = ">BI"  # status, payload length
HEADER_SIZE = struct.calcsize(HEADER)
DRAWN, FAILED = 0, 1
MAX_TEXT = 64 * 1024  # far beyond what one QR code holds (2,953 bytes)
