"""Recommendations: offline models, their evaluation, and (later) rows served from memory.

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
"""
