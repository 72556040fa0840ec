"""The training pipeline: one module per DVC stage, plus what the stages share (the data layer
`data`, the data `sources`, the `training` loop, MLflow `tracking`), tuning and registration."""
