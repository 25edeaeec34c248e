"""The runtime: takes an inbound message and a session, returns outbound messages and events."""
