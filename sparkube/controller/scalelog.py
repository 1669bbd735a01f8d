"""The controller's record of what it did to the workers' group, for the ledger
(:class:`sparkube.cost.ledger.ScaleEvent`): ``ledger/scaling.json`` in the cluster's
bucket, ``{"schema": "sparkube.scaling/1", "events": [...]}``, oldest first.

Only the Lease holder scales, so only it writes; each change is one read and one write
of that object, after Auto Scaling took the change (a refused one is not a fact). The
nodes' instance role may read and write the bucket; ``usage`` reads the events into the
ledger, where they say when and why the group grew and shrank (the instances' own
intervals come from EC2, as for every instance). A write that fails is logged and the
event lost: scaling never waits on its own bookkeeping.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from sparkube.aws.s3 import get_text, put_json
from sparkube.cost.ledger import LedgerError, ScaleEvent

log = logging.getLogger("sparkube.controller")

KEY = "ledger/scaling.json"
SCHEMA = "sparkube.scaling/1"
#: The most events kept (the oldest go first): years of a busy cluster's changes.
KEEP = 5000


def read(s3: Any, bucket: str) -> tuple[ScaleEvent, ...]:
    """The events the bucket holds (none when there is no record yet). Raises
    :class:`LedgerError` when the object is not a scaling record."""
    text = get_text(s3, bucket, KEY)
    if text is None:
        return ()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LedgerError(f"{KEY} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise LedgerError(f"{KEY} is not a {SCHEMA} record")
    return tuple(
        ScaleEvent.from_json(e, f"{KEY} events[{n}]")
        for n, e in enumerate(data.get("events") or [])
    )


class ScaleLog:
    """Appends the controller's changes to the bucket's record."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def add(self, events: Sequence[ScaleEvent]) -> None:
        if not events:
            return
        try:
            try:
                kept = list(read(self.s3, self.bucket))
            except LedgerError as exc:
                log.warning("%s unreadable (%s): started again", KEY, exc)
                kept = []
            kept = [*kept, *events][-KEEP:]
            put_json(
                self.s3,
                self.bucket,
                KEY,
                {"schema": SCHEMA, "events": [e.to_json() for e in kept]},
            )
        except Exception as exc:  # throttled, no right: scaling goes on
            log.warning("scale events not recorded in s3://%s/%s: %s", self.bucket, KEY, exc)
