"""Deepvue's batches for the dashboard: the stored ones, newest first, then the seed page's
two, each as a status poll would describe it now."""

from __future__ import annotations

from urllib.parse import quote

from simulator.kit.resources import Resource, newest
from simulator.providers.deepvue import models
from simulator.providers.deepvue.models import BATCHES, Batch, Context, Deepvue
from simulator.providers.deepvue.routes import output_path

__all__ = ["resources"]

STATUS_PATH = "/v1/verification/batch-processing-status"


async def resources(ctx: Context, deepvue: Deepvue, limit: int) -> list[Resource]:
    stored = [batch for _, batch in await newest(ctx.store, BATCHES, limit)]
    seeds = reversed(list(deepvue.seeds.values()))
    return [resource(ctx, batch) for batch in [*stored, *seeds][:limit]]


def resource(ctx: Context, batch: Batch) -> Resource:
    """A batch, as ``get_batch_processing_status`` would answer for it now.

    Deepvue tells only whether a batch is done, so its rows count as done all at once.
    """
    done = batch.done(ctx.now())
    links = {"status": f"{STATUS_PATH}?request_id={quote(batch.request_id)}"}
    if done:
        links["output file"] = output_path(batch)
    rows = len(batch.rows)
    seeded = batch.owner is None
    return Resource(
        provider="deepvue",
        kind="batch",
        id=batch.request_id,
        status=models.status_message(done),
        current=rows if done else 0,
        total=rows,
        ready_at=batch.ready_at,
        created_at=batch.progress.started_at,
        expires_at=None if seeded else ctx.options.retention.expires_at(batch.ready_at),
        links=links,
        finished=done,
        timeline=((batch.progress.started_at, 0), (batch.ready_at, rows)),
    )
