"""Twilio SMS and WhatsApp transport for Palabre (in progress)."""
