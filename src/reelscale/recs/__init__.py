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

Serving part:

    sources    what recs reads from the catalog and playback, as protocols (no imports)
    snapshot   RecsModel: a build of everything requests need, immutable and versioned
    similarity item neighbour lists (collaborative; blended with genre, cast, language)
    live       playback events since the last build, applied at once
    rows       RowBuilder: the personalised home page and More Like This
    serving    RecsService: trains on start and on a schedule, swaps models atomically
    api        GET /v1/recs/home and /v1/recs/titles/{id}/more-like-this
    bench      `reelscale bench recs`: home-row latency on synthetic platform data
"""
