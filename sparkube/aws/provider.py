"""The AWS provider: the small, uniform surface the phases and the CLI call.

``validate`` / ``plan`` / ``ensure_infra`` / ``describe`` / ``list_clusters`` /
``teardown``: each takes a spec or a cluster name and returns typed records
(:class:`Plan`, :class:`~sparkube.model.ClusterInfo`, ...). Validation does only reads
and runs before the first write, so bad input exits 2 with nothing created.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sparkube.aws import (
    discovery,
    iam,
    instances,
    joinparam,
    keys,
    network,
    pricing,
    settings,
    storage,
    teardown,
    workergroup,
)
from sparkube.aws import tags as T
from sparkube.aws import userdata as UD
from sparkube.aws.errors import aws_errors
from sparkube.aws.session import AwsClients, known_regions, resolve_region
from sparkube.env import Environment
from sparkube.errors import CloudError, ConfigError, UsageError
from sparkube.model import CONTROL_PLANE, WORKER, ClusterInfo, Role
from sparkube.nodes import kubeadm, selfjoin
from sparkube.progress import NullReporter, Reporter
from sparkube.spec import ClusterSpec

log = logging.getLogger(__name__)
PHASE = "infra"
#: The AWS endpoint the nodes themselves call (SSM, for the self-join); default AWS's
#: own. Tests point it at the bed's moto.
NODE_AWS_ENDPOINT_VAR = "SPARKUBE_NODE_AWS_ENDPOINT"
MAX_WORKERS = 200


@dataclass(frozen=True)
class PlannedInstances:
    role: Role
    count: int
    existing: int
    instance_type: str
    vcpus: int
    memory_mib: int
    architecture: str
    ami: str
    root_volume_gb: int
    spot: bool
    usd_per_hour: float | None
    #: CPU credit mode the nodes launch in; None for a type that has none (not burstable).
    cpu_credits: str | None = None
    #: Whether each node gets a public IPv4 address (billed per hour).
    public_ipv4: bool = True
    #: The most nodes of the role (the worker group's maximum; ``count`` is its minimum).
    max_count: int | None = None
    #: Spot workers: how many of them run on-demand (the group's first: the drivers'
    #: pool), and at what price each (None: unknown).
    on_demand_count: int = 0
    on_demand_usd_per_hour: float | None = None


@dataclass(frozen=True)
class PlannedResource:
    kind: str
    name: str
    exists: bool
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    """What ``up --until infra`` would create (or finds already made)."""

    cluster: str
    region: str
    account: str
    vpc_id: str
    subnet_id: str | None
    allow_cidrs: tuple[str, ...]
    resources: tuple[PlannedResource, ...]
    instances: tuple[PlannedInstances, ...]
    #: The price per hour at the minimum of workers (what ``up`` launches).
    cost: pricing.CostEstimate
    ttl_minutes: int | None
    existing: ClusterInfo
    #: The spec ``up`` will use: the one given, completed from the existing cluster.
    spec: ClusterSpec

    @property
    def to_create(self) -> list[PlannedResource]:
        return [r for r in self.resources if not r.exists]

    @property
    def cost_at_max(self) -> pricing.CostEstimate:
        """The price per hour with the worker group at its maximum."""
        return self.cost.with_workers(self.spec.max_count)


@dataclass(frozen=True)
class _Checked:
    #: The spec completed from the existing cluster.
    spec: ClusterSpec
    types: dict[str, instances.TypeInfo]
    placement: network.Placement
    cidrs: tuple[str, ...]
    existing: ClusterInfo
    #: Whether nodes get a public IPv4 address: the subnet's MapPublicIpOnLaunch when a
    #: subnet is given, else the default VPC's default subnets (which map one).
    public_ipv4: bool = True


@dataclass
class AwsProvider:
    """AWS for one region; built by :meth:`from_env` (tests inject ``sleep``/``detect_ip``)."""

    env: Environment
    clients: AwsClients
    detect_ip: network.IpDetector | None = network.checkip
    sleep: Any = time.sleep
    now: Any = field(default=lambda: datetime.now(UTC))
    #: The last validation (under the spec as given and as completed), reused by
    #: ``settle`` and ``ensure_infra`` right after ``plan`` of the same spec.
    _last_check: tuple[tuple[ClusterSpec, ...], _Checked] | None = field(default=None, repr=False)
    _amis: dict[tuple[str, str | None], instances.AmiInfo] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Environment, *, region: str | None, **kwargs: Any) -> AwsProvider:
        region = resolve_region(env.environ, region)
        check_region(region)
        return cls(env=env, clients=AwsClients(env.environ, region), **kwargs)

    @property
    def region(self) -> str:
        return self.clients.region

    # --- reads ------------------------------------------------------------------------

    def describe(self, cluster: str) -> ClusterInfo:
        with aws_errors(self.region):
            return discovery.describe_cluster(self.clients, cluster)

    def vpc_cidrs(self, vpc_id: str) -> tuple[str, ...]:
        with aws_errors(self.region):
            return network.vpc_cidrs(self.clients.ec2, vpc_id)

    def list_clusters(self, *, all_regions: bool = False) -> list[discovery.ClusterSummary]:
        regions = [self.region]
        if all_regions:
            with aws_errors(self.region):
                described = self.clients.ec2.describe_regions()["Regions"]
            regions = sorted(str(r["RegionName"]) for r in described)
        out: list[discovery.ClusterSummary] = []
        for region in regions:
            with aws_errors(region):
                out += discovery.list_clusters(self.clients.for_region(region))
        return out

    def prices(self, types: list[str], *, region: str | None = None) -> dict[str, pricing.Price]:
        clients = self.clients.for_region(region) if region else self.clients
        return pricing.on_demand_prices(clients, region or self.region, types)

    def ami(self, arch: str, ami: str | None) -> instances.AmiInfo:
        """The AMI for an architecture (``--ami`` or Ubuntu's), looked up once."""
        key = (arch, ami)
        if key not in self._amis:
            self._amis[key] = instances.resolve_ami(
                self.clients.ssm, self.clients.ec2, arch=arch, ami=ami
            )
        return self._amis[key]

    def _check(self, spec: ClusterSpec, *, reuse: bool = False) -> _Checked:
        """Every read-only check of the spec against AWS; raises before any write.

        The spec is first completed from the cluster that exists (settings the user did
        not give are the cluster's own, see :mod:`sparkube.aws.settings`).
        """
        if reuse and self._last_check is not None and spec in self._last_check[0]:
            return self._last_check[1]
        if not 0 <= spec.workers <= MAX_WORKERS or not 0 <= spec.max_count <= MAX_WORKERS:
            raise ConfigError(f"--workers and --max-workers must be between 0 and {MAX_WORKERS}.")
        ec2 = self.clients.ec2
        with aws_errors(self.region):
            existing = discovery.describe_cluster(self.clients, spec.name)
        given = spec
        spec = settings.adopt(spec, existing)
        cidrs = network.operator_cidrs(spec.allow_cidrs, self.detect_ip, self.env.environ)
        with aws_errors(self.region):
            types = instances.describe_types(ec2, [spec.control_plane_type, spec.instance_type])
            instances.check_kubeadm_minimum(types[spec.control_plane_type], "--control-plane-type")
            instances.check_kubeadm_minimum(types[spec.instance_type], "--instance-type")
            placement = network.resolve_placement(ec2, vpc_id=spec.vpc_id, subnet_id=spec.subnet_id)
            zone = None
            public_ipv4 = True
            if placement.subnet_id:
                subnet = ec2.describe_subnets(SubnetIds=[placement.subnet_id])["Subnets"][0]
                zone = str(subnet["AvailabilityZone"])
                public_ipv4 = bool(subnet.get("MapPublicIpOnLaunch", True))
            instances.check_offered(
                ec2, [spec.control_plane_type, spec.instance_type], self.region, zone
            )
        vpc_diff = []
        if existing.vpc_id and existing.vpc_id != placement.vpc_id:
            vpc_diff.append(f"VPC {existing.vpc_id} (asked {placement.vpc_id})")
        settings.check_matches(spec, existing, vpc_diff)
        expired = existing.expires_at
        if existing.nodes and expired is not None and expired <= self.now():
            # its nodes power themselves off a minute after any boot (the TTL timer)
            raise UsageError(
                f"Cluster {spec.name} reached its time to live at "
                f"{expired.strftime('%Y-%m-%d %H:%M')} UTC and its nodes power off as they "
                "boot; remove it with 'sparkube down', then create a new one with 'sparkube up'."
            )
        checked = _Checked(spec, types, placement, cidrs, existing, public_ipv4)
        # Cached under both the spec as given and as completed: ``plan`` then
        # ``ensure_infra`` of the same cluster validate once.
        self._last_check = ((given, spec), checked)
        return checked

    def settle(self, spec: ClusterSpec) -> ClusterSpec:
        """``spec`` completed from the existing cluster (validated; reads only)."""
        return self._check(spec, reuse=True).spec

    def validate(self, spec: ClusterSpec) -> None:
        self._check(spec)

    def plan(self, spec: ClusterSpec) -> Plan:
        """What ``up`` would do, priced; reads only."""
        checked = self._check(spec)
        spec = checked.spec
        existing = checked.existing
        types = checked.types
        with aws_errors(self.region):
            account = self.clients.account_id()
            amis = {arch: self.ami(arch, spec.ami) for arch in {t.arch for t in types.values()}}
            cost = pricing.estimate(
                self.clients,
                self.region,
                control_plane_type=spec.control_plane_type,
                worker_type=spec.instance_type,
                workers=spec.workers,
                spot=spec.spot,
                root_volume_gb=spec.root_volume_gb,
                volume_type=instances.ROOT_VOLUME_TYPE,
                public_ipv4=checked.public_ipv4,
                cpu_credits=spec.cpu_credits,
                max_workers=spec.max_count,
            )
        bucket = storage.bucket_name(spec.name, self.region, account)
        role = iam.role_name(spec.name, self.region)
        rules = network.wanted_rules("SELF", checked.cidrs)
        resources = [
            PlannedResource(
                "key pair",
                keys.key_name(spec.name),
                existing.key_name is not None,
                "ed25519, generated locally; private key 0600 in SPARKUBE_HOME",
            ),
            PlannedResource(
                "security group",
                network.group_name(spec.name),
                existing.security_group_id is not None,
                f"in {checked.placement.vpc_id}",
            ),
            *[
                PlannedResource(
                    "ingress rule",
                    r.describe(),
                    existing.security_group_id is not None
                    and (r.cidr is None or r.cidr in existing.operator_cidrs),
                )
                for r in rules
            ],
            PlannedResource(
                "IAM role", role, existing.role_name is not None, f"read/write s3://{bucket} only"
            ),
            PlannedResource("instance profile", role, existing.instance_profile is not None),
            PlannedResource(
                "S3 bucket",
                bucket,
                existing.bucket is not None,
                "public access blocked, encrypted (SSE-S3), decommission/ expires after a day",
            ),
            PlannedResource(
                "launch template",
                workergroup.template_name(spec.name),
                existing.launch_template is not None,
                "the workers' launch settings and user data",
            ),
            PlannedResource(
                "worker group",
                workergroup.group_name(spec.name),
                existing.worker_group is not None,
                f"Auto Scaling, {spec.workers} to {spec.max_count} workers",
            ),
        ]
        cp_type = types[spec.control_plane_type]
        w_type = types[spec.instance_type]
        have_cp = 1 if existing.control_plane() else 0
        planned = (
            PlannedInstances(
                CONTROL_PLANE,
                1,
                have_cp,
                cp_type.name,
                cp_type.vcpus,
                cp_type.memory_mib,
                cp_type.arch,
                amis[cp_type.arch].image_id,
                spec.root_volume_gb,
                False,
                cost.control_plane.usd_per_hour,
                _credits(cp_type.name, spec.cpu_credits),
                checked.public_ipv4,
            ),
            PlannedInstances(
                WORKER,
                spec.workers,
                len(existing.workers()),
                w_type.name,
                w_type.vcpus,
                w_type.memory_mib,
                w_type.arch,
                amis[w_type.arch].image_id,
                spec.root_volume_gb,
                spec.spot,
                cost.worker.usd_per_hour,
                _credits(w_type.name, spec.cpu_credits),
                checked.public_ipv4,
                max_count=spec.max_count,
                on_demand_count=cost.on_demand_workers,
                on_demand_usd_per_hour=cost.on_demand_worker.usd_per_hour
                if cost.on_demand_worker is not None
                else None,
            ),
        )
        ttl = int(spec.ttl.total_seconds() // 60) if spec.ttl else None
        return Plan(
            spec.name,
            self.region,
            account,
            checked.placement.vpc_id,
            checked.placement.subnet_id,
            # what the group will let in: what it does now and what is added
            tuple(dict.fromkeys((*existing.operator_cidrs, *checked.cidrs))),
            tuple(resources),
            planned,
            cost,
            ttl,
            existing,
            spec,
        )

    # --- writes -----------------------------------------------------------------------

    def ensure_infra(
        self,
        spec: ClusterSpec,
        *,
        reporter: Reporter | None = None,
        prepare_script: str | None = None,
    ) -> ClusterInfo:
        """Create whatever of the cluster's infrastructure is missing; return it all."""
        reporter = reporter or NullReporter()
        checked = self._check(spec, reuse=True)
        self._last_check = None  # what follows changes what exists
        spec = checked.spec
        existing = checked.existing
        for node in existing.nodes:
            if node.state in ("stopping", "shutting-down"):
                going = "stopping" if node.state == "stopping" else "being terminated"
                raise CloudError(
                    f"Node {node.name} ({node.instance_id}) is {going}; wait a minute and "
                    f"run 'sparkube up' again (it will be "
                    f"{'started' if node.state == 'stopping' else 'replaced'})."
                )
        ec2, name = self.clients.ec2, spec.name
        base = T.base_tags(name, spec.tags)
        with aws_errors(self.region):
            reporter.step(PHASE, "key pair", "checking")
            key_name = keys.ensure_key_pair(
                ec2, self.env, name, base, have_instances=bool(existing.nodes)
            )
            reporter.step(PHASE, "security group", "checking")
            record = settings.settings_tags(spec)
            group_id = network.ensure_security_group(
                ec2,
                name,
                vpc_id=checked.placement.vpc_id,
                cidrs=checked.cidrs,
                tags={**base, **record},
            )
            if existing.security_group_id is not None:
                differs = {k: v for k, v in record.items() if existing.tags.get(k) != v}
                if differs:  # e.g. more workers asked: a resume must know
                    ec2.create_tags(Resources=[group_id], Tags=T.to_aws(differs))
            bucket = storage.bucket_name(name, self.region, self.clients.account_id())
            reporter.step(PHASE, "bucket", bucket)
            storage.ensure(self.clients.s3, bucket, name, self.region, base)
            reporter.step(PHASE, "iam", "role and instance profile")
            parameter = selfjoin.parameter_arn(self.region, self.clients.account_id(), name)
            _, profile = iam.ensure(
                self.clients.iam,
                name,
                self.region,
                bucket=bucket,
                join_parameter_arn=parameter,
                tags=base,
            )
            cp_request, worker_request = self._requests(
                spec, checked, key_name, group_id, profile, prepare_script
            )
            new_ids: list[str] = []
            if existing.control_plane() is None:
                reporter.step(PHASE, "instances", "launching control plane")
                new_ids += instances.launch(
                    ec2,
                    cp_request,
                    sleep=self.sleep,
                    note=lambda t: reporter.step(PHASE, "instances", t),
                )
            group = self._ensure_workers(spec, checked, worker_request, new_ids, reporter)
            self._allow_scaling(name, existing, new_ids)
            nodes = instances.describe_nodes(ec2, cluster=name)
            known = {n.instance_id for n in existing.nodes}
            new_ids += [
                n.instance_id
                for n in nodes
                if n.instance_id not in known and n.instance_id not in new_ids
            ]
            named = workergroup.name_new_workers(ec2, name, nodes, launched=set(new_ids))
            if named:
                reporter.step(PHASE, "workers", f"named {', '.join(named)}")
            stopped = [n.instance_id for n in existing.nodes if n.state == "stopped"]
            if stopped:
                # EC2 forgets when they stopped as soon as they start: the ledger keeps it
                self._record_instances(name, bucket)
                reporter.step(PHASE, "instances", f"starting {len(stopped)} stopped")
                ec2.start_instances(InstanceIds=stopped)
            ids = [n.instance_id for n in existing.nodes] + new_ids
            changed = bool(new_ids or stopped or named) or any(
                n.state == "pending" for n in existing.nodes
            )
            if changed:
                reporter.step(PHASE, "instances", f"waiting for {len(ids)} to run")
                instances.wait_running(ec2, ids)
            info = discovery.describe_cluster(self.clients, name) if changed else existing
            if not changed and group is not None and group != existing.worker_group:
                info = dataclasses.replace(info, worker_group=group)
            if changed:
                self._record_instances(name, bucket)
        return info

    def _ensure_workers(
        self,
        spec: ClusterSpec,
        checked: _Checked,
        req: instances.LaunchRequest,
        new_ids: list[str],
        reporter: Reporter,
    ) -> Any:
        """The workers' launch template and Auto Scaling group, at the spec's size; waits
        until the group has its desired capacity in service."""
        ec2, autoscaling, name = self.clients.ec2, self.clients.autoscaling, spec.name
        existing = checked.existing
        # Workers launched before the cluster had a group (RunInstances) count too.
        outside = [w for w in existing.workers() if not w.tags.get(T.GROUP)]
        low = max(0, spec.workers - len(outside))
        high = max(low, spec.max_count - len(outside))
        reporter.step(PHASE, "workers", "launch template")
        template_id, version = workergroup.ensure_template(
            ec2, name, instances.template_data(req), T.base_tags(name, spec.tags)
        )
        subnet = checked.placement.subnet_id or self._control_plane_subnet(
            existing, new_ids, checked.placement.vpc_id
        )
        reporter.step(PHASE, "workers", f"group of {low} to {high}")
        group, _ = workergroup.ensure_group(
            autoscaling,
            name,
            template_id=template_id,
            version=version,
            min_size=low,
            max_size=high,
            subnet_id=subnet,
            tags={**req.tags, **instances.role_tags(name, WORKER)},
            sleep=self.sleep,
            spot_type=spec.instance_type if spec.spot else None,
        )
        expires = req.tags.get(T.EXPIRES)
        if expires:
            workergroup.schedule_expiry(autoscaling, name, datetime.fromisoformat(expires))
        if group.desired:
            reporter.step(PHASE, "workers", f"waiting for {group.desired} in service")

            def fallback(why: str) -> None:
                reporter.step(
                    PHASE, "workers",
                    f"no spot capacity for {spec.instance_type} ({why}): launching "
                    "on-demand workers instead; the next 'sparkube up' asks for spot again",
                )  # fmt: skip

            group = workergroup.wait_in_service(autoscaling, name, on_fallback=fallback)
        return group

    def _allow_scaling(self, cluster: str, existing: ClusterInfo, new_ids: list[str]) -> None:
        """The controller's rights on the workers' group and the join parameter, for the
        control plane's instance only (``iam.controller_policy``)."""
        cp = existing.control_plane()
        cp_id = cp.instance_id if cp is not None else (new_ids[0] if new_ids else None)
        if cp_id is None:
            return
        account = self.clients.account_id()
        group_arn = (
            f"arn:aws:autoscaling:{self.region}:{account}:autoScalingGroup:*:"
            f"autoScalingGroupName/{workergroup.group_name(cluster)}"
        )
        instance_arn = f"arn:aws:ec2:{self.region}:{account}:instance/{cp_id}"
        parameter_arn = selfjoin.parameter_arn(self.region, account, cluster)
        iam.put_controller_policy(
            self.clients.iam,
            cluster,
            self.region,
            iam.controller_policy(group_arn, parameter_arn, instance_arn),
        )

    def _control_plane_subnet(self, existing: ClusterInfo, new_ids: list[str], vpc_id: str) -> str:
        """The subnet the workers' group launches into when none was given: the control
        plane's (one zone: no cross-zone traffic between the nodes)."""
        ec2 = self.clients.ec2
        cp = existing.control_plane()
        if cp is None and new_ids:
            found = instances.describe_nodes(ec2, instance_ids=new_ids[:1])
            cp = found[0] if found else None
        if cp is not None and cp.subnet_id:
            return cp.subnet_id
        zone = cp.availability_zone if cp is not None else None
        filters = [
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
        if zone:
            filters.append({"Name": "availability-zone", "Values": [zone]})
        subnets = sorted(
            ec2.describe_subnets(Filters=filters).get("Subnets", []),
            key=lambda s: (str(s["AvailabilityZone"]), str(s["SubnetId"])),
        )
        if not subnets:
            raise ConfigError(
                f"VPC {vpc_id} has no default subnet for the workers' group; pass --subnet-id "
                "of a public subnet."
            )
        return str(subnets[0]["SubnetId"])

    def _record_instances(self, cluster: str, bucket: str) -> None:
        """Bring the instance facts of the cluster's ledger up to date (sparkube.cost).
        Money is informative: a failure here is logged, never fails ``up`` or ``down``."""
        from sparkube.cost.instances import record_instances

        try:
            record_instances(self.clients, cluster, bucket)
        except Exception as exc:
            log.warning("could not record the instances in the ledger: %s", exc)

    def _requests(
        self,
        spec: ClusterSpec,
        checked: _Checked,
        key_name: str,
        group_id: str,
        profile: str,
        prepare_script: str | None,
    ) -> tuple[instances.LaunchRequest, instances.LaunchRequest]:
        """How the control plane is launched and how the workers' template launches
        each worker (same AMI rule, key, group, profile, volume, TTL and tags)."""
        existing = checked.existing
        expires = existing.expires_at
        if expires is None and spec.ttl is not None:
            expires = self.now() + spec.ttl
        self_join = {
            WORKER: selfjoin.user_data_block(
                spec.name,
                template=kubeadm.render_self_join_template(),
                ssm_endpoint=self.env.environ.get(NODE_AWS_ENDPOINT_VAR, ""),
            )
        }
        scripts = {
            role: UD.encode(
                UD.render(
                    prepare_script or UD.MINIMAL_PREPARE,
                    expires_at=expires,
                    role=role,
                    before_prepare=self_join.get(role, ""),
                )
            )
            for role in (CONTROL_PLANE, WORKER)
        }
        extra = {T.KUBERNETES: spec.kubernetes_version, T.ROOT_GB: str(spec.root_volume_gb)}
        if expires is not None:
            extra[T.EXPIRES] = expires.isoformat(timespec="seconds")
        tags = T.base_tags(spec.name, spec.tags, **extra)

        def request(role: Role, itype: str, spot: bool) -> instances.LaunchRequest:
            return instances.LaunchRequest(
                cluster=spec.name,
                role=role,
                count=1,
                first_worker=0,
                instance_type=itype,
                ami=self.ami(checked.types[itype].arch, spec.ami),
                key_name=key_name,
                group_id=group_id,
                instance_profile=profile,
                subnet_id=checked.placement.subnet_id,
                vpc_id=checked.placement.vpc_id,
                user_data=scripts[role],
                root_volume_gb=spec.root_volume_gb,
                spot=spot,
                # TTL shutdowns terminate; a one-time spot node cannot be stopped anyway.
                terminate_on_shutdown=expires is not None or spot,
                tags=tags,
                vcpus=checked.types[itype].vcpus,
                cpu_credits=spec.cpu_credits,
            )

        return (
            request(CONTROL_PLANE, spec.control_plane_type, False),
            request(WORKER, spec.instance_type, spec.spot),
        )

    def record_done(self, info: ClusterInfo, phase: str) -> ClusterInfo:
        """Record on the cluster's security group that ``up`` completed ``phase``
        (one tag write, only when it changes); return ``info`` with the tag."""
        if info.security_group_id is None or info.tags.get(T.DONE) == phase:
            return info
        with aws_errors(self.region):
            self.clients.ec2.create_tags(
                Resources=[info.security_group_id], Tags=T.to_aws({T.DONE: phase})
            )
        return dataclasses.replace(info, tags={**info.tags, T.DONE: phase})

    def join_parameter_due(self, cluster: str) -> bool:
        """True when the self-join parameter is missing or its token is near expiry."""
        with aws_errors(self.region):
            value = joinparam.read(self.clients.ssm, cluster)
        return selfjoin.needs_renewal(value, self.now())

    def publish_join(self, spec: ClusterSpec, value: str) -> None:
        """Write the self-join parameter (``value`` holds a token: never logged)."""
        with aws_errors(self.region):
            joinparam.publish(self.clients.ssm, spec.name, value, T.base_tags(spec.name, spec.tags))

    def existing(self, spec: ClusterSpec) -> ClusterInfo:
        """The cluster as the last validation of ``spec`` found it (before any write)."""
        return self._check(spec, reuse=True).existing

    def teardown(
        self,
        cluster: str,
        *,
        keep_data: bool,
        reporter: Reporter | None = None,
        info: ClusterInfo | None = None,
    ) -> tuple[teardown.TeardownResult, ClusterInfo]:
        """Delete everything of ``cluster`` (as found now, or as ``info`` found it just
        before); return what was done and what remains."""
        reporter = reporter or NullReporter()
        info = info or self.describe(cluster)
        with aws_errors(self.region):
            result = teardown.teardown(
                self.clients,
                self.env,
                info,
                keep_data=keep_data,
                reporter=reporter,
                sleep=self.sleep,
                # a kept bucket keeps the ledger: it learns when the instances ended
                on_terminated=(lambda: self._record_instances(cluster, bucket))
                if keep_data and (bucket := info.bucket)
                else None,
            )
            remaining = discovery.describe_cluster(self.clients, cluster)
        return result, remaining


def _credits(instance_type: str, cpu_credits: str) -> str | None:
    """The CPU credit mode nodes of ``instance_type`` launch in (None: not burstable)."""
    return cpu_credits if instances.is_burstable(instance_type) else None


def check_region(region: str) -> None:
    if region not in known_regions():
        raise ConfigError(
            f"Unknown AWS region {region!r}; use a region name like us-east-1 or eu-west-1."
        )
