"""The training pipeline: one module per DVC stage, plus what the stages share (the data layer
`data`, the data `sources`, the `training` loop, MLflow `tracking`), tuning and registration."""

# Before anything imports torch: cap the CPU kernels so training gives the same weights on
# every x86-64 machine with AVX2 (pipelines/cpu.py says what and why).
from pipelines.cpu import pin as _pin_cpu_kernels

_pin_cpu_kernels()
