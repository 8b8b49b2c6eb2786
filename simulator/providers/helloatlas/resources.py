"""HelloAtlas's batches for the dashboard: the uploaded ones, newest first, then the seed
pages' two, each with the documents the extracts pages would show finished now.

Each document's finishing instant is derived from the seed when it is asked for (as a page
is rendered), so counting costs one derivation a document: each call counts at most
``MAX_COUNTED`` documents, newest batches first; a batch beyond that shows its size only.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from simulator.kit.resources import Resource, newest, timeline
from simulator.providers.helloatlas.models import BATCHES, Batch, Context, HelloAtlas

__all__ = ["resources"]

MAX_COUNTED = 5000


async def resources(ctx: Context, helloatlas: HelloAtlas, limit: int) -> list[Resource]:
    stored = [batch for _, batch in await newest(ctx.store, BATCHES, limit)]
    seeds = reversed(list(helloatlas.seeds.values()))
    found = []
    budget = MAX_COUNTED
    for batch in [*stored, *seeds][:limit]:
        counted = batch.count <= budget
        if counted:
            budget -= batch.count
        found.append(resource(ctx, helloatlas, batch, counted))
    return found


def resource(ctx: Context, helloatlas: HelloAtlas, batch: Batch, counted: bool) -> Resource:
    links = {"extracts": f"/v1/bulk/extracts?batch_id={quote(batch.batch_id)}"}
    seeded = batch.owner is None
    shown = Resource(
        provider="helloatlas",
        kind="batch",
        id=batch.batch_id,
        status="uploaded",
        total=batch.count,
        created_at=batch.created_at,
        expires_at=None if seeded else ctx.options.retention.expires_at(batch.created_at),
        links=links,
    )
    if not counted:
        return shown
    now = ctx.now()
    fixed = helloatlas.fixed.get(batch.batch_id, {})
    documents = batch.documents
    # A document the seed page shows verbatim is finished from the start.
    ends = [
        batch.created_at
        if index in fixed
        else helloatlas.finishes_at(batch, index, documents.traits(index))
        for index in range(batch.count)
    ]
    current = sum(1 for end in ends if end <= now)
    finished = current >= batch.count
    return dataclasses.replace(
        shown,
        status="done" if finished else "processing",
        current=current,
        ready_at=max(ends, default=batch.created_at),
        finished=finished,
        timeline=timeline(batch.created_at, ends),
    )
