"""The HTTP API (FastAPI): routes, authentication and rate limits, and the one mapping of
errors to HTTP answers. Build the app with ``grader.api.app.create_app``."""
