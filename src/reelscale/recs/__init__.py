"""Recommendations: offline models, their evaluation, and home rows served from memory.

Offline part (this package today):

    data       CSV loading and validation, id maps, the sparse user-item matrix
    split      the per-group stratified random split of Microsoft Recommenders
    metrics    MAP, nDCG@k, Precision@k, Recall@k as Microsoft Recommenders defines them
    models/    popularity, EASE, RP3beta, implicit ALS
    rerank     the second stage: features per (user, candidate) and a listwise linear ranker
    tuning     hyper-parameter choice by validation inside the training rows only
    pipeline   candidate generation + ranker, fitted end to end from training rows
    offline    `topk` and `evaluate` on CSV files
    synthetic  data with planted structure, shaped like MovieLens-100k, for tests and benches
    cli        the `reelscale recs ...` commands

Platform part:

    sources     what recs reads from catalog, playback, accounts, as protocols (no imports)
    context     a request's or an interaction's context: hour bucket, week part, device
    contextrank the second stage: features, affinity tables, per-request re-ordering
    contexttrain its training inside a build, on a time-based holdout, with a fallback
    snapshot    RecsModel: a build of everything requests need, immutable and versioned
    similarity  item neighbour lists (collaborative; blended with genre, cast, language)
    training    one training run: read the sources, build, summarise (server and CLI)
    artifacts   versioned model files and the CURRENT pointer, written atomically
    live        playback events (progress, plays, thumbs) since the last build
    rows        RowBuilder: the personalised home page and More Like This
    serving     RecsService: builds, rebuild requests, artifact polling, atomic swaps
    api         GET /v1/recs/home and /v1/recs/titles/{id}/more-like-this
    rhythm      synthetic platform data with a planted daily rhythm (tests)
    bench       `reelscale bench recs`: home-row latency on synthetic platform data
"""
