"""The HTTP layer: the Jobs API client (one Session, one request path), sign-in, configuration, the
request-rate limiter. It knows nothing of runs beyond the API's JSON, and nothing of notebooks."""
