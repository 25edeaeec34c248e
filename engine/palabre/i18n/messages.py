"""The engine's own texts, in English (the catalogs' source language).

They are marked with N_() so that `palabre i18n extract` finds them; they are looked up
in the contact's language when they are sent.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a text for extraction without translating it now."""
    return message


EXPIRED = N_("Your previous conversation expired, so we are starting again.")
STOPPED = N_(
    "Stopped: you will receive no more announcements from us. Send START to receive them "
    "again, or any other message to talk to us."
)
BROADCASTS_RESTARTED = N_(
    "You will receive our announcements again. Send STOP at any time to stop them."
)
# Translators: the words that stop announcements, separated by commas. Keep STOP; add the
# words people write in your language (with and without accents).
STOP_WORDS = N_("STOP, STOPALL, UNSUBSCRIBE")
# Translators: the words that start announcements again, separated by commas. Keep START.
START_WORDS = N_("START, UNSTOP, YES, SUBSCRIBE")
RESTARTED = N_("Starting again from the beginning.")
HELP = N_(
    'Answer the question above. Send "restart" to start again, "stop" to stop, '
    'or "language" to change language.'
)
CHOOSE_LANGUAGE = N_("Which language do you prefer?")
LANGUAGE_CHANGED = N_("Language changed.")
NOT_TEXT = N_("Sorry, I can only read text messages here. Please type your answer.")
EMPTY = N_("Please type an answer.")
TOO_LONG = N_("That message is too long. Please send a shorter answer.")
NOT_A_CHOICE = N_("Please answer with one of the options.")
LATIN_LETTERS = N_("Please write with Latin letters (A to Z).")
TOO_MANY_TRIES = N_("That is too many tries. Send a message to start again.")
INTERNAL_ERROR = N_("Sorry, something went wrong on our side. Please try again later.")
NO_FLOW = N_("Sorry, I did not understand. Please try again.")
HANDOFF_WAIT = N_("An agent will answer you here shortly.")
