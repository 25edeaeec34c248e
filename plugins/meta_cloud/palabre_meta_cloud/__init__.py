"""Meta WhatsApp Cloud API transport for Palabre (in progress)."""
