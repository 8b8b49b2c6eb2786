"""Check's batches and fileIds for the dashboard: the stored ones, newest first, then the
documentation's (as a client last changed them), each as Check would describe it now."""

from __future__ import annotations

from urllib.parse import quote

from simulator.kit.files import FileRef
from simulator.kit.resources import Resource, newest, timeline
from simulator.providers.check.models import (
    BATCHES,
    SEED_COPIES,
    Batch,
    Check,
    Context,
    joined,
)

__all__ = ["resources"]


async def resources(ctx: Context, check: Check, limit: int) -> list[Resource]:
    """At most ``limit``: the fileIds take up to half when there are more batches."""
    files = await _files(ctx, check, limit)
    batches = await _batches(ctx, check, limit)
    files = files[: max(limit // 2, limit - len(batches))]
    return [*batches[: limit - len(files)], *files]


async def _batches(ctx: Context, check: Check, limit: int) -> list[Resource]:
    stored = [joined(head, {}) for _, head in await newest(ctx.store, BATCHES, limit)]
    copies = dict(await newest(ctx.store, SEED_COPIES, len(check.seeds)))
    seeds = [copies.get(batch_id, seed) for batch_id, seed in reversed(check.seeds.items())]
    return [batch_resource(ctx, batch, batch.id in check.seeds) for batch in [*stored, *seeds]]


async def _files(ctx: Context, check: Check, limit: int) -> list[Resource]:
    files = check.files
    stored = [
        (k, ref) for k, ref in await newest(ctx.store, files.refs, limit) if k not in files.seeds
    ]
    seeds = [
        (file_id, await ctx.store.get(files.refs, file_id) or ref)
        for file_id, (ref, _) in files.seeds.items()
    ]
    return [file_resource(ctx, file_id, ref) for file_id, ref in [*stored, *seeds][:limit]]


def batch_resource(ctx: Context, batch: Batch, seeded: bool) -> Resource:
    """A batch, as ``GET /v1/batch/{id}`` would answer for it now."""
    now = ctx.now()
    status = batch.status(now)
    path = f"/v1/batch/{quote(batch.id)}"
    finishes = () if batch.cancelled_at is not None else batch.progress.ends
    return Resource(
        provider="check",
        kind="batch",
        id=batch.id,
        status=status,
        current=batch.counts(now).processed,
        total=len(batch.items),
        ready_at=batch.ends_at,
        created_at=batch.created_at,
        expires_at=None if seeded else batch.expires_at(ctx.options.max_batches),
        links={"batch": path, "results": f"{path}/results"},
        finished=status != "processing",
        timeline=timeline(
            batch.created_at, (batch.progress.finishes_at(i) for i in range(len(finishes)))
        ),
    )


def file_resource(ctx: Context, file_id: str, ref: FileRef) -> Resource:
    """An uploaded file's id: live until a batch uses it or it expires."""
    status = ref.status(ctx.now())
    return Resource(
        provider="check",
        kind="file",
        id=file_id,
        status=status,
        total=ref.size,
        expires_at=ref.expires_at,
        finished=status != "live",
    )
