"""The bill of a set of job attempts: vCPU-hours, GB-hours and, priced, dollars."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Usage:
    """One attempt of one job: what it asked for and how long it ran."""

    job: str
    vcpus: float
    memory_mib: float
    seconds: float


@dataclass
class Bill:
    """What a set of attempts used; ``cost_usd`` None when nothing priced it (a local run)."""

    jobs: int
    attempts: int
    retries: int
    vcpu_hours: float
    gb_hours: float
    cost_usd: float | None = None
    prices: str = ""  # where the prices come from
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def bill_of(usages: Iterable[Usage], hourly: Callable[[Usage], float] | None = None,
            prices: str = "", note: str = "") -> Bill:
    """Sum ``usages``; ``hourly(usage)`` is its USD per hour (None: no cost)."""
    usages = list(usages)
    jobs = {u.job for u in usages}
    hours = [max(0.0, u.seconds) / 3600 for u in usages]
    cost = None
    if hourly is not None:
        cost = round(sum(hourly(u) * h for u, h in zip(usages, hours, strict=True)), 6)
    return Bill(
        jobs=len(jobs), attempts=len(usages), retries=len(usages) - len(jobs),
        vcpu_hours=round(sum(u.vcpus * h for u, h in zip(usages, hours, strict=True)), 6),
        gb_hours=round(sum(u.memory_mib / 1024 * h for u, h in zip(usages, hours, strict=True)), 6),
        cost_usd=cost, prices=prices, note=note,
    )
