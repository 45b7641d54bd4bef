"""The standalone edge reverse proxy (`reelscale serve --roles edge`).

config      EdgeSettings: REELSCALE_EDGE_* settings; upstream and route parsing
upstreams   Origin, Upstreams, StaticUpstreams: pool membership and its discovery seam
routing     Router: path prefix to pool
balancer    Pool, Instance: power-of-two-choices balancing and outlier ejection
retry       RetryBudget and the idempotency rule: when a failed request may go again
http1       wire helpers: hop-by-hop headers, request ids, paths, problem+json bytes
upstream    UpstreamConnection, UpstreamConnections: response parsing and keep-alive pools
auth        ProxyAuth, EdgeTrust: token checks, the token cache, the signed identity header
exchange    Exchange: one request's journey, as a callback-driven state machine
downstream  ClientConnection: request parsing and the limits on abusive clients
metrics     ProxyStats and its Prometheus collector
server      Proxy (shared request-path state) and ProxyServer (listen, sweep, stop)
main        the `serve --roles edge` entry point
"""
