"""bukva: recognise hand-drawn Ukrainian letters and digits.

The shared core. It imports only the standard library, numpy and Pillow, so every
component (pipeline, predictor, transformer, frontend) can use it cheaply.
"""

__version__ = "0.1.0"
