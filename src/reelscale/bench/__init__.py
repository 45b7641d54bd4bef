"""`reelscale bench ...`: benchmarks that run a peer in the same run where one is named."""
