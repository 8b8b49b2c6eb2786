"""Passcreator's bulk processes for the dashboard: the stored ones, newest first, then the
seed page's process, each as ``GET /api/v3/process/{identifier}`` would describe it now."""

from __future__ import annotations

from urllib.parse import quote

from simulator.kit.resources import Resource, newest
from simulator.providers.passcreator import models
from simulator.providers.passcreator.models import PROCESSES, Context, Passcreator, Process

__all__ = ["resources"]


async def resources(ctx: Context, pc: Passcreator, limit: int) -> list[Resource]:
    stored = [process for _, process in await newest(ctx.store, PROCESSES, limit)]
    return [resource(ctx, process) for process in [*stored, pc.seed_process][:limit]]


def resource(ctx: Context, process: Process) -> Resource:
    now = ctx.now()
    current = process.current(now)
    ready_at = process.finished_at()
    seeded = process.owner is None
    # Items finish one by one at a steady rate: a few points of that line.
    marks = sorted({process.total * k // 8 for k in range(1, 9)})
    return Resource(
        provider="passcreator",
        kind="process",
        id=process.identifier,
        status=process.status(now),
        current=current,
        total=process.total,
        ready_at=ready_at,
        created_at=process.created_at,
        expires_at=None if seeded else models.process_expires_at(ctx.options, process),
        links={"process": f"/api/v3/process/{quote(process.identifier)}"},
        finished=current >= process.total,
        timeline=((process.created_at, 0), *((process.reached_at(n), n) for n in marks if n)),
    )
