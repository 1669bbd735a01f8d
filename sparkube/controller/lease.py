"""One controller acts at a time: a ``coordination.k8s.io`` Lease, as Kubernetes' own
controllers elect their leader.

The holder renews the Lease every cycle; another replica takes it over only once it has
gone unrenewed for its duration. Updates carry the resourceVersion read, so two
contenders cannot both win (the API server refuses the second with a conflict).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

LEASE_NAME = "sparkube-controller"
LEASE_SECONDS = 20


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: Any) -> dt.datetime | None:
    if isinstance(text, dt.datetime):
        return text if text.tzinfo else text.replace(tzinfo=dt.UTC)
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


class Lease:
    """Hold the Lease ``namespace/LEASE_NAME`` as ``identity``."""

    def __init__(self, client: Any, namespace: str, identity: str) -> None:
        self.client = client
        self.namespace = namespace
        self.identity = identity
        self.held = False
        #: The Lease's annotations as last read (what an earlier holder left there).
        self.seen: dict[str, str] = {}

    def hold(self, health: dict[str, str] | None = None) -> bool:
        """Acquire or renew; True while this process holds the Lease. ``health``: the
        holder's annotations on the Lease (how its last cycles went), written with the
        renewal, so whoever reads the Lease sees a holder that renews but cannot act."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.coordination_v1 import Lease as LeaseResource

        now = _now()
        try:
            lease = self.client.get(LeaseResource, LEASE_NAME, namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": LEASE_NAME,
                    "namespace": self.namespace,
                    "annotations": dict(health or {}),
                },
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": LEASE_SECONDS,
                    "acquireTime": _micro(now),
                    "renewTime": _micro(now),
                    "leaseTransitions": 0,
                },
            }
            return self._write(self.client.create, LeaseResource.from_dict(body))
        self.seen = dict((lease.metadata.annotations if lease.metadata else None) or {})
        spec = lease.spec
        holder = spec.holderIdentity
        renewed = _parse(spec.renewTime) or _parse(spec.acquireTime)
        duration = spec.leaseDurationSeconds or LEASE_SECONDS
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder != self.identity and holder and not expired:
            self.held = False
            return False
        body = lease.to_dict()
        if health is not None:
            body["metadata"]["annotations"] = {
                **(body["metadata"].get("annotations") or {}),
                **health,
            }
        body["spec"]["renewTime"] = _micro(now)
        body["spec"]["leaseDurationSeconds"] = LEASE_SECONDS
        if holder != self.identity:
            body["spec"]["holderIdentity"] = self.identity
            body["spec"]["acquireTime"] = _micro(now)
            body["spec"]["leaseTransitions"] = (spec.leaseTransitions or 0) + 1
        return self._write(self.client.replace, LeaseResource.from_dict(body))

    def _write(self, call: Any, lease: Any) -> bool:
        """Create or replace the Lease; a conflict (another replica wrote it since it was
        read) means this one does not hold it."""
        from lightkube.core.exceptions import ApiError

        try:
            call(lease)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
            self.held = False
            return False
        self.held = True
        return True

    def release(self) -> None:
        """Give the Lease up on a clean exit, so a successor need not wait it out."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.coordination_v1 import Lease as LeaseResource

        if not self.held:
            return
        try:
            lease = self.client.get(LeaseResource, LEASE_NAME, namespace=self.namespace)
            if lease.spec.holderIdentity != self.identity:
                return
            body = lease.to_dict()
            body["spec"]["holderIdentity"] = None
            body["spec"]["renewTime"] = None
            self.client.replace(LeaseResource.from_dict(body))
        except ApiError:
            pass
        self.held = False


#: Annotations of the Lease: when the holder's last cycle succeeded, and the error of its
#: last cycle ("" when it succeeded).
CYCLE_OK = "sparkube.io/cycle-ok"
CYCLE_ERROR = "sparkube.io/cycle-error"


def failing(client: Any, namespace: str, longer_than: float) -> str | None:
    """The holder's error, when its cycles have failed for more than ``longer_than``
    seconds (None when it works, or failed only briefly)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.coordination_v1 import Lease as LeaseResource

    try:
        lease = client.get(LeaseResource, LEASE_NAME, namespace=namespace)
    except ApiError:
        return None
    ann = lease.metadata.annotations or {}
    error = ann.get(CYCLE_ERROR) or ""
    ok = _parse(ann.get(CYCLE_OK))
    if not error:
        return None
    if ok is not None and (_now() - ok).total_seconds() <= longer_than:
        return None
    return error


def holder(client: Any, namespace: str) -> tuple[str | None, float | None]:
    """(who holds the Lease, seconds since it was last renewed); (None, None) if no
    controller ever took it."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.coordination_v1 import Lease as LeaseResource

    try:
        lease = client.get(LeaseResource, LEASE_NAME, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None, None
        raise
    renewed = _parse(lease.spec.renewTime)
    age = (_now() - renewed).total_seconds() if renewed else None
    return lease.spec.holderIdentity, age
