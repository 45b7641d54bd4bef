"""The edge gateway: classification, adaptive concurrency limits, shedding, rate limits.

priority     Priority, Rule, Classifier: which of four classes a request belongs to
adaptive     AdaptiveLimit: the total concurrency limit, learned from latency
utilisation  UtilisationMonitor: process CPU and event-loop lag, sampled periodically
limiter      PriorityLimiter: the limit partitioned by priority, with borrowing
ratelimit    TokenBucket limits per member, address and route (memory or Redis)
middleware   EdgeMiddleware: the pure ASGI middleware that ties them together
runtime      EdgeRuntime: the lifecycle service that runs the samplers
"""
