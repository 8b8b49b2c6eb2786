"""bulksim on a Redis store, served as ``bulksim serve`` serves (for ``make bench``).

    python -m tests.bench.redis_app redis://127.0.0.1:6379/0 [provider.key=value ...]

Settings come from the environment (``BULKSIM_*``) as for ``bulksim serve``; the request log
is off, as in the baseline.
"""

from __future__ import annotations

import os
import sys

from simulator import Settings, create_app
from simulator.server import run_uvicorn
from simulator.store.redis import RedisStore


def main(url: str, *options: str) -> int:
    pairs = tuple(tuple(option.split("=", 1)) for option in options)
    settings = Settings.from_env(os.environ, port=0, options=pairs)
    app = create_app(settings, store=RedisStore.from_url(url))

    def announce(port: int) -> None:
        print(f"bulksim on {url} serving on http://127.0.0.1:{port}", flush=True)

    return run_uvicorn(app, "127.0.0.1", 0, announce)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
