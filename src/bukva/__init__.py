"""bukva: recognise hand-drawn Ukrainian letters and digits.

The shared core. It imports only the standard library, numpy and Pillow, so every
component (pipeline, predictor, transformer, frontend) can use it cheaply; the two exceptions
are imported only by the components that install their extra: `bukva.network` (the CNN, the
`torch` extra) and `bukva.serving` (KServe glue, the `kserve` extra).
"""

__version__ = "0.1.0"
