"""The price table: a JSON file bundled with the package (``prices-YYYY-MM.json``), or the
user's own with the same shape, so a bill can be redone with today's or a negotiated price."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from starfish_batch.core.errors import StarfishBatchError

BUNDLED = Path(__file__).with_name("prices-2026-11.json")
COMPUTE_TYPES = ("EC2", "SPOT", "FARGATE", "FARGATE_SPOT")
OPTIMAL_FAMILIES = ("c", "m", "r")  # Batch's "optimal" picks from the C, M and R families


class PricingError(StarfishBatchError):
    """The table cannot price this: an unknown region, compute type or instance family."""


@dataclass(frozen=True)
class PriceTable:
    """Hourly prices per region: Fargate per vCPU and GB, EC2 per vCPU of each instance family."""

    date: str
    source: str
    path: str
    regions: dict

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        path = Path(path) if path else BUNDLED
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(date=str(doc["date"]), source=str(doc["source"]), path=str(path),
                       regions=dict(doc["regions"]))
        except OSError as exc:
            raise PricingError(f"cannot read price table {path}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise PricingError(f"price table {path} is not a price table (date, source, "
                               f"regions): {exc}") from None

    def describe(self) -> str:
        """Where the prices come from, for the scientist reading a bill."""
        which = "bundled" if Path(self.path) == BUNDLED else "given"
        return f"{which} price table {Path(self.path).name} of {self.date} ({self.source})"

    def _region(self, region: str) -> dict:
        if region not in self.regions:
            raise PricingError(f"price table {self.path} has no prices for region {region} "
                               f"(it has {', '.join(sorted(self.regions))}); give one with --prices FILE")
        return self.regions[region]

    def hourly(self, compute_type: str, region: str, vcpus: float, memory_mib: float,
               instance_types: tuple[str, ...] | list[str] = ("optimal",)) -> float:
        """USD per hour of one job of ``vcpus`` and ``memory_mib`` on this compute type.

        Fargate charges what the job asks for; on EC2 a job pays its share of an instance:
        the larger of its vCPUs and its memory in the family's vCPUs, at the cheapest family
        the compute environment may start.
        """
        prices = self._region(region)
        kind = compute_type.upper()
        if kind in ("FARGATE", "FARGATE_SPOT"):
            rate = prices[kind.lower()]
            return vcpus * rate["vcpu_hour"] + memory_mib / 1024 * rate["gb_hour"]
        if kind not in ("EC2", "SPOT"):
            raise PricingError(f"compute type {compute_type} is not one of {', '.join(COMPUTE_TYPES)}")
        families = prices["ec2" if kind == "EC2" else "spot"]
        wanted = _families(instance_types, families)
        if not wanted:
            raise PricingError(f"price table {self.path} has no {kind} prices in {region} for "
                               f"instance types {', '.join(instance_types)}; give one with --prices FILE")
        return min(f["vcpu_hour"] * max(vcpus, memory_mib / 1024 / f["gib_per_vcpu"])
                   for f in (families[name] for name in wanted))


def _families(instance_types, families: dict) -> list[str]:
    """Table families an environment's ``instance_types`` may start ("optimal": C, M and R)."""
    found: list[str] = []
    for item in instance_types:
        name = item.split(".")[0]
        if name == "optimal":
            found += [f for f in families if f.startswith(OPTIMAL_FAMILIES)]
        elif name in families:
            found.append(name)
    return sorted(set(found))
