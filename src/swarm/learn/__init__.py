"""Local learning: datasets, learners and the compression of model updates."""
