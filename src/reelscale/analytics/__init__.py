"""Live analytics: windowed aggregates over the event stream, computed by functions.

`service.Analytics` holds the aggregates; `functions.register` adds the functions that feed
it; `api.router` serves them (`GET /v1/ops/analytics`, and `/live` as server-sent events).
See docs/analytics.md for every definition.
"""
