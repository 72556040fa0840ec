"""The bukva CNN, its files, and the KServe predictor that serves it."""
