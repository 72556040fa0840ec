"""The KServe predictor (`python -m model`) that serves the bukva CNN (`bukva.network`)."""
