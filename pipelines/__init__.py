"""DVC stage entry points (one module per stage), tuning and registration."""
