"""The bukva KServe transformer: PNG/JPEG or canvas pixels in, top-k characters out. No torch."""
