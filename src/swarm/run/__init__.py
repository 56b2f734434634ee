"""Running scenarios: one run with its clean-run comparison, shards, live runs, benchmarks."""
