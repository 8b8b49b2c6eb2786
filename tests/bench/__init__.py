"""``make bench``: the simulator measured against a minimal Starlette app in the same run."""
