"""Where a scientist's runs live in the module's results bucket, found by the launcher itself.

With the module's default ``results_write_scope = "caller"``, the submitter policy lets each
scientist write only under ``<results_caller_prefix><aws:userid>/`` (the Terraform output
``results_caller_prefix``). The launcher asks STS who it is (the same ``UserId`` IAM puts in
``${aws:userid}``) and uses that folder as the default ``--results-url`` of run, ``status`` and
``cancel``, saying so once. Without that output (the ``"bucket"`` opt-out, or an older module)
the default stays the bucket's root.
"""

from __future__ import annotations

from starfish_batch.core import storage
from starfish_batch.launcher.console import say


def default_results_url(executor) -> str:
    """``s3://<bucket>/<prefix><aws:userid>`` when the module scopes writes per caller, else the bucket."""
    outputs = executor.outputs
    bucket = f"s3://{outputs.results_bucket}"
    prefix = outputs.extra.get("results_caller_prefix")
    if not isinstance(prefix, str) or not prefix.strip("/"):
        return bucket
    url = storage.join(bucket, prefix.strip("/"), executor.submitter)
    say(f"results: {url}/ (your own folder of the results bucket: the only place there you may write)")
    return url
