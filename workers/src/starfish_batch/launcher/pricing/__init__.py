"""What compute costs: a dated price table, the sizes AWS offers, and the sum of job attempts.

It knows AWS's prices and sizes, not starfish nor boto: callers hand it plain numbers
(vCPUs, MiB, seconds) and get hours and dollars back.
"""

from starfish_batch.launcher.pricing.sizing import fargate_pair, recommend_memory_mib
from starfish_batch.launcher.pricing.table import BUNDLED, PriceTable, PricingError
from starfish_batch.launcher.pricing.usage import Bill, Usage, bill_of

__all__ = ["BUNDLED", "Bill", "PriceTable", "PricingError", "Usage", "bill_of", "fargate_pair",
           "recommend_memory_mib"]
