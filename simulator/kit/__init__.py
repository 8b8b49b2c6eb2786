"""Provider-agnostic building blocks. Nothing here imports ``simulator.providers``."""
