"""DHIS-2 Tracker actions for Palabre (in progress)."""
