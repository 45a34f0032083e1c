"""``oncely cluster status``: the cluster as the store sees it (``runtime.cluster``)."""

from __future__ import annotations

import json
import sys

import click

from oncely.config import load_settings
from oncely.domain.errors import OncelyError
from oncely.runtime.cluster import ClusterStatus, cluster_status


@click.group("cluster")
def cluster_group() -> None:
    """The cluster: nodes, shard leases, queues, takeovers."""


@cluster_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--takeovers", type=int, default=10, show_default=True, help="Recent takeovers.")
@click.pass_context
def status_command(ctx: click.Context, as_json: bool, takeovers: int) -> None:
    """Nodes and their roles and heartbeat ages, who holds which shards since when, waiting
    runs per queue, the oldest due run's age, recent takeovers."""
    from oncely import compose

    obj = ctx.obj or {}
    try:
        settings = load_settings(obj.get("config"), store=obj.get("store"))
        store = compose.open_store(settings.store)
    except OncelyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        status = cluster_status(
            store,
            compose.pick_clock(store).now(),
            member_ttl=settings.scheduler_lease_ttl,
            takeovers=takeovers,
        )
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(status.to_dict(), indent=2))
    else:
        click.echo(render(status))


def render(status: ClusterStatus) -> str:
    lines = [f"as of {status.now.isoformat(timespec='seconds')}", "", "nodes:"]
    if not status.nodes:
        lines.append("  (none registered)")
    for n in status.nodes:
        quota = f" quota {n.quota}" if n.quota is not None else ""
        state = "live" if n.live else "DEAD"
        lines.append(
            f"  {n.id}  {','.join(n.roles):<22} {state:<4} heartbeat {n.heartbeat_age:.1f}s ago"
            f"  shards {len(n.shards)}{quota}  v{n.version}"
        )
    lines += ["", "shards:"]
    by_holder: dict[str, list[int]] = {}
    since: dict[str, str] = {}
    for s in status.shards:
        if s.holder is not None and s.expires_in is not None and s.expires_in > 0:
            by_holder.setdefault(s.holder, []).append(s.shard)
            if s.since is not None:
                first = since.get(s.holder)
                stamp = s.since.isoformat(timespec="seconds")
                since[s.holder] = stamp if first is None else min(first, stamp)
    for holder, shards in sorted(by_holder.items()):
        lines.append(
            f"  {holder}: {len(shards)} ({_ranges(shards)}), held since {since.get(holder, '-')}"
        )
    if status.unheld_shards:
        lines.append(f"  UNHELD: {len(status.unheld_shards)} ({_ranges(status.unheld_shards)})")
    lines += ["", "queues:"]
    if not status.queues:
        lines.append("  (nothing waiting)")
    for q in status.queues:
        age = "-" if q.oldest_due_age is None else f"{q.oldest_due_age:.1f}s"
        lines.append(f"  {q.queue:<20} waiting {q.waiting:>8}  due {q.due:>8}  oldest due {age}")
    oldest = "-" if status.oldest_due_age is None else f"{status.oldest_due_age:.1f}s"
    lines += [f"oldest due run: {oldest}", "", "recent takeovers:"]
    if not status.takeovers:
        lines.append("  (none)")
    for t in status.takeovers:
        lines.append(
            f"  {t.at.isoformat(timespec='seconds')} {t.shard}: {t.old_holder} -> {t.new_holder}"
            f" (expired {t.expired_at.isoformat(timespec='seconds')}, token {t.old_token} ->"
            f" {t.new_token})"
        )
    return "\n".join(lines)


def _ranges(numbers: list[int]) -> str:
    out: list[str] = []
    start = prev = None
    for n in sorted(numbers):
        if start is None:
            start = prev = n
        elif prev is not None and n == prev + 1:
            prev = n
        else:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = n
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(out)


def register(group: click.Group) -> None:
    group.add_command(cluster_group)
