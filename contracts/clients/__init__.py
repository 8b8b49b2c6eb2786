"""Reference clients: how a correct client of each provider behaves.

Each authenticates and refreshes its token, polls with backoff, pages to the end, retries
what should be retried (429 after Retry-After, 5xx, a dropped connection, a cut-off body)
and nothing else, and uses a one-shot resource once. They take ``sleep`` and ``now`` so a
test can run them on the simulator's clock; by default they use the real time.
"""

from __future__ import annotations
