"""The engine's own texts, in English (the catalogs' source language).

They are marked with N_() so that `palabre i18n extract` finds them; they are looked up
in the contact's language when they are sent.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a text for extraction without translating it now."""
    return message


EXPIRED = N_("Your previous conversation expired, so we are starting again.")
STOPPED = N_("Conversation stopped. Send a message at any time to start again.")
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
