"""`python -m palabre_qr.worker`: draws QR codes for palabre_qr.drawing, over stdin/stdout.

It answers each request frame (palabre_qr.frames) with the PNG, or with the ActionError's
message, else only the exception's type (its message might quote the text). It ends at
the end of its input, so it never outlives the server's pipe. The package never imports
this module, so that `-m` runs it fresh.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

from palabre_qr.frames import DRAWN, FAILED, HEADER, HEADER_SIZE, MAX_TEXT


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer frames until the input ends."""
    from palabre.errors import ActionError
    from palabre_qr.png import qr_png

    while header := requests.read(HEADER_SIZE):
        if len(header) < HEADER_SIZE:
            return
        _, length = struct.unpack(HEADER, header)
        if length > MAX_TEXT:
            return  # not a frame the drawer sends: stop rather than guess
        text = requests.read(length).decode("utf-8", "replace")
        try:
            status, payload = DRAWN, qr_png(text)
        except ActionError as exc:
            status, payload = FAILED, str(exc).encode()
        except Exception as exc:  # its message might quote the text: the type only
            status, payload = FAILED, f"qr.code failed: {type(exc).__name__}".encode()
        answers.write(struct.pack(HEADER, status, len(payload)) + payload)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
