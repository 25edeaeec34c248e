"""QR code images for Palabre (in progress)."""
