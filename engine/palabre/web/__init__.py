"""The web server: the Starlette app that hosts the transports, and the web simulator."""
