"""docs/iam-policy.json is exactly what sparkube's AWS calls need (issue 11).

sparkube's own commands run against the moto server (``plan --spot``, ``up --until
infra`` twice with a node stopped in between, ``status``, ``ls --all-regions``,
``doctor``, the S3 helpers that ``submit``/``wordcount``/``jobs``/``logs``/``usage`` use,
the AWS calls of the phases after ``infra``, then ``down``), and every AWS operation
they make is recorded with :func:`sparkube.aws.session.observe_calls`. Each operation is
mapped to the IAM actions AWS authorizes it with (and the resources it touches, taken
from what moto made), then:

- every one of them must be allowed by a statement of the policy (action and resource);
- every action in the policy must be needed by some recorded operation (least
  privilege: an action nobody calls fails the test);
- an operation the table does not know fails the test, so new AWS calls in sparkube
  cannot slip past the policy.

What this cannot prove: the policy's ``Condition`` blocks (tag conditions,
``iam:PassedToService``, ``ec2:CreateAction``) are not evaluated here, only checked to
name the tag sparkube writes; moto does not evaluate IAM. Operation → action mappings
follow AWS's "Required permissions for Amazon S3 API operations" page and the Service
Authorization Reference (e.g. ``HeadBucket``/``ListObjectsV2`` → ``s3:ListBucket``,
``HeadObject`` → ``s3:GetObject``, ``DeleteObjects`` with version ids →
``s3:DeleteObject`` + ``s3:DeleteObjectVersion``, tags at creation → ``ec2:CreateTags``,
``iam:TagRole``, ``iam:TagInstanceProfile``, an instance profile at launch →
``iam:PassRole``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from sparkube.aws import iam as sparkube_iam
from sparkube.aws import instances, keys, storage, workergroup
from sparkube.aws import s3 as s3data
from sparkube.aws import tags as T
from sparkube.aws.provider import AwsProvider
from sparkube.aws.session import AwsClients, CallCounter, observe_calls
from sparkube.nodes import selfjoin
from sparkube.phases import PhaseContext
from sparkube.progress import NullReporter
from sparkube.spark import phase as spark_phase
from sparkube.spark.records import record_key
from sparkube.spec import ClusterSpec
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import ACCOUNT, REGION, MotoAws

pytestmark = pytest.mark.integration

POLICY_FILE = Path(__file__).resolve().parents[2] / "docs" / "iam-policy.json"
CIDR = "203.0.113.7/32"
CLUSTER = "sparkube"
Cli = Callable[..., CliResult]

#: ``service.Operation`` (as observe_calls reports it) -> (IAM action, resource kind)
#: pairs AWS authorizes it with. Kinds are resolved to ARNs from what the run made.
OPERATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    # EC2 reads: no resource-level permissions, "*".
    **{
        f"ec2.{op}": ((f"ec2:{op}", "*"),)
        for op in (
            "DescribeImages",
            "DescribeInstanceCreditSpecifications",
            "DescribeLaunchTemplateVersions",
            "DescribeLaunchTemplates",
            "DescribeInstanceTypeOfferings",
            "DescribeInstanceTypes",
            "DescribeInstances",
            "DescribeKeyPairs",
            "DescribeRegions",
            "DescribeSecurityGroups",
            "DescribeSpotPriceHistory",
            "DescribeSubnets",
            "DescribeVolumes",
            "DescribeVpcs",
        )
    },
    # the surplus CPU credits an unlimited-mode instance was charged (status, usage)
    "cloudwatch.GetMetricStatistics": (("cloudwatch:GetMetricStatistics", "*"),),
    "ec2.ImportKeyPair": (("ec2:ImportKeyPair", "key-pair"), ("ec2:CreateTags", "key-pair")),
    "ec2.DeleteKeyPair": (("ec2:DeleteKeyPair", "key-pair"),),
    "ec2.CreateSecurityGroup": (
        ("ec2:CreateSecurityGroup", "security-group"),
        ("ec2:CreateSecurityGroup", "vpc"),
        ("ec2:CreateTags", "security-group"),
    ),
    "ec2.AuthorizeSecurityGroupIngress": (("ec2:AuthorizeSecurityGroupIngress", "security-group"),),
    "ec2.DeleteSecurityGroup": (("ec2:DeleteSecurityGroup", "security-group"),),
    # the settings on the group; a worker's name on its instance
    "ec2.CreateTags": (("ec2:CreateTags", "security-group"), ("ec2:CreateTags", "instance")),
    # the workers' launch template: made tagged, changed only when tagged
    "ec2.CreateLaunchTemplate": (
        ("ec2:CreateLaunchTemplate", "launch-template"),
        ("ec2:CreateTags", "launch-template"),
    ),
    "ec2.CreateLaunchTemplateVersion": (("ec2:CreateLaunchTemplateVersion", "launch-template"),),
    "ec2.ModifyLaunchTemplate": (("ec2:ModifyLaunchTemplate", "launch-template"),),
    "ec2.DeleteLaunchTemplate": (("ec2:DeleteLaunchTemplate", "launch-template"),),
    # Auto Scaling: reads on "*"; a group with a launch template also needs RunInstances
    # on the template and PassRole of its instance profile's role, tags at creation
    # CreateOrUpdateTags, and the account's first group Auto Scaling's service-linked role
    # ("Launch template permissions" and "Service-linked roles" in the Auto Scaling guide)
    **{
        f"auto-scaling.{op}": ((f"autoscaling:{op}", "*"),)
        for op in (
            "DescribeAutoScalingGroups",
            "DescribeScalingActivities",
            "DescribeScheduledActions",
        )
    },
    "auto-scaling.CreateAutoScalingGroup": (
        ("autoscaling:CreateAutoScalingGroup", "worker-group"),
        ("autoscaling:CreateOrUpdateTags", "worker-group"),
        ("ec2:RunInstances", "launch-template"),
        ("iam:PassRole", "passed-role"),
        ("iam:CreateServiceLinkedRole", "autoscaling-service-role"),
    ),
    "auto-scaling.UpdateAutoScalingGroup": (
        ("autoscaling:UpdateAutoScalingGroup", "worker-group"),
        ("ec2:RunInstances", "launch-template"),
        ("iam:PassRole", "passed-role"),
    ),
    "auto-scaling.PutScheduledUpdateGroupAction": (
        ("autoscaling:PutScheduledUpdateGroupAction", "worker-group"),
    ),
    "auto-scaling.DeleteAutoScalingGroup": (
        ("autoscaling:DeleteAutoScalingGroup", "worker-group"),
    ),
    "ec2.RunInstances": (
        ("ec2:RunInstances", "instance"),
        ("ec2:RunInstances", "volume"),
        ("ec2:RunInstances", "network-interface"),
        ("ec2:RunInstances", "image"),
        ("ec2:RunInstances", "subnet"),
        ("ec2:RunInstances", "security-group"),
        ("ec2:RunInstances", "key-pair"),
        ("ec2:CreateTags", "instance"),
        ("ec2:CreateTags", "volume"),
        ("ec2:CreateTags", "network-interface"),
        ("iam:PassRole", "passed-role"),
    ),
    "ec2.StartInstances": (("ec2:StartInstances", "instance"),),
    "ec2.TerminateInstances": (("ec2:TerminateInstances", "instance"),),
    # IAM: the nodes' role and instance profile (tags at creation need the Tag* actions).
    "iam.GetRole": (("iam:GetRole", "role"),),
    "iam.CreateRole": (("iam:CreateRole", "role"), ("iam:TagRole", "role")),
    "iam.PutRolePolicy": (("iam:PutRolePolicy", "role"),),
    "iam.GetRolePolicy": (("iam:GetRolePolicy", "role"),),
    "iam.ListRolePolicies": (("iam:ListRolePolicies", "role"),),
    "iam.DeleteRolePolicy": (("iam:DeleteRolePolicy", "role"),),
    "iam.ListAttachedRolePolicies": (("iam:ListAttachedRolePolicies", "role"),),
    "iam.DetachRolePolicy": (("iam:DetachRolePolicy", "role"),),
    "iam.DeleteRole": (("iam:DeleteRole", "role"),),
    "iam.GetInstanceProfile": (("iam:GetInstanceProfile", "instance-profile"),),
    "iam.CreateInstanceProfile": (
        ("iam:CreateInstanceProfile", "instance-profile"),
        ("iam:TagInstanceProfile", "instance-profile"),
    ),
    "iam.AddRoleToInstanceProfile": (("iam:AddRoleToInstanceProfile", "instance-profile"),),
    "iam.RemoveRoleFromInstanceProfile": (
        ("iam:RemoveRoleFromInstanceProfile", "instance-profile"),
    ),
    "iam.DeleteInstanceProfile": (("iam:DeleteInstanceProfile", "instance-profile"),),
    # S3: bucket-level actions on the bucket ARN, object-level on BUCKET/*.
    "s3.HeadBucket": (("s3:ListBucket", "bucket"),),
    "s3.CreateBucket": (("s3:CreateBucket", "bucket"),),
    "s3.DeleteBucket": (("s3:DeleteBucket", "bucket"),),
    "s3.GetBucketTagging": (("s3:GetBucketTagging", "bucket"),),
    "s3.PutBucketTagging": (("s3:PutBucketTagging", "bucket"),),
    "s3.GetPublicAccessBlock": (("s3:GetBucketPublicAccessBlock", "bucket"),),
    "s3.PutPublicAccessBlock": (("s3:PutBucketPublicAccessBlock", "bucket"),),
    "s3.GetBucketEncryption": (("s3:GetEncryptionConfiguration", "bucket"),),
    "s3.PutBucketEncryption": (("s3:PutEncryptionConfiguration", "bucket"),),
    # the rule that expires Spark's decommission fallback (storage.DECOMMISSION_RULE)
    "s3.GetBucketLifecycleConfiguration": (("s3:GetLifecycleConfiguration", "bucket"),),
    "s3.PutBucketLifecycleConfiguration": (("s3:PutLifecycleConfiguration", "bucket"),),
    "s3.ListObjectsV2": (("s3:ListBucket", "bucket"),),
    "s3.ListObjectVersions": (("s3:ListBucketVersions", "bucket"),),
    # sparkube's DeleteObjects always names version ids (storage.empty_and_delete).
    "s3.DeleteObjects": (("s3:DeleteObject", "object"), ("s3:DeleteObjectVersion", "object")),
    "s3.HeadObject": (("s3:GetObject", "object"),),
    "s3.GetObject": (("s3:GetObject", "object"),),
    "s3.PutObject": (("s3:PutObject", "object"),),
    "s3.CopyObject": (("s3:GetObject", "object"), ("s3:PutObject", "object")),
    "s3.CreateMultipartUpload": (("s3:PutObject", "object"),),
    "s3.UploadPart": (("s3:PutObject", "object"),),
    "s3.CompleteMultipartUpload": (("s3:PutObject", "object"),),
    # the Ubuntu AMI's public parameter, and the cluster's join parameter (up reads it to
    # know whether its token needs renewing)
    "ssm.GetParameter": (
        ("ssm:GetParameter", "ami-parameter"),
        ("ssm:GetParameter", "join-parameter"),
    ),
    # tags at creation need AddTagsToResource (the SSM guide's "Tagging parameters")
    "ssm.PutParameter": (
        ("ssm:PutParameter", "join-parameter"),
        ("ssm:AddTagsToResource", "join-parameter"),
    ),
    "ssm.DeleteParameter": (("ssm:DeleteParameter", "join-parameter"),),
    "sts.GetCallerIdentity": (("sts:GetCallerIdentity", "*"),),
    "pricing.GetProducts": (("pricing:GetProducts", "*"),),
    "service-quotas.GetServiceQuota": (("servicequotas:GetServiceQuota", "vcpu-quota"),),
}

#: Operations sparkube makes that this test does not drive, with where they are made
#: (the source is checked, so an entry goes stale loudly).
NOT_DRIVEN_HERE = {
    "s3.CopyObject": ("sparkube/spark/jobs.py", "copy_object("),
    # only for nodes in unlimited CPU credit mode, which moto never reports (its
    # DescribeInstanceCreditSpecifications answers standard); test_cost_ledger drives it
    "cloudwatch.GetMetricStatistics": ("sparkube/cost/instances.py", "get_metric_statistics("),
    # only when the group does not reach its size (the reason it gives), and when the
    # workers' launch settings change on a resume: test_worker_group drives those
    "auto-scaling.DescribeScalingActivities": (
        "sparkube/aws/workergroup.py",
        "describe_scaling_activities(",
    ),
    "ec2.CreateLaunchTemplateVersion": (
        "sparkube/aws/workergroup.py",
        "create_launch_template_version(",
    ),
    "ec2.ModifyLaunchTemplate": ("sparkube/aws/workergroup.py", "modify_launch_template("),
}


def _load_policy() -> list[dict[str, Any]]:
    document = json.loads(POLICY_FILE.read_text("utf-8"))
    assert document["Version"] == "2012-10-17"
    statements = document["Statement"]
    for st in statements:
        assert st["Effect"] == "Allow", st.get("Sid")
        assert "NotAction" not in st and "NotResource" not in st, st.get("Sid")
    return list(statements)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed(statements: Iterable[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether an Allow statement names ``action`` on a pattern matching ``resource``
    (IAM's ``*`` matches across ``/``, as fnmatch's does; conditions not evaluated)."""
    for st in statements:
        actions = [a.lower() for a in _as_list(st["Action"])]
        if action.lower() not in actions:
            continue
        if any(fnmatchcase(resource, pattern) for pattern in _as_list(st["Resource"])):
            return True
    return False


def _resources(moto_aws: MotoAws) -> dict[str, list[str]]:
    """The ARNs each resource kind stands for, read from what the run made in moto."""
    ec2: Any = moto_aws.client("ec2")
    iam: Any = moto_aws.client("iam")
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    nodes = [
        i
        for r in ec2.describe_instances(Filters=T.cluster_filter(CLUSTER))["Reservations"]
        for i in r["Instances"]
    ]
    assert nodes
    (group,) = ec2.describe_security_groups(Filters=T.cluster_filter(CLUSTER))["SecurityGroups"]
    role = iam.get_role(RoleName=sparkube_iam.role_name(CLUSTER, REGION))["Role"]
    profile = iam.get_instance_profile(InstanceProfileName=sparkube_iam.role_name(CLUSTER, REGION))
    bucket = storage.bucket_name(CLUSTER, REGION, ACCOUNT)
    parameter = instances.UBUNTU_PARAMETER.format(arch="amd64")
    autoscaling: Any = moto_aws.client("autoscaling")
    (worker_group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[workergroup.group_name(CLUSTER)]
    )["AutoScalingGroups"]
    (template,) = ec2.describe_launch_templates(
        LaunchTemplateNames=[workergroup.template_name(CLUSTER)]
    )["LaunchTemplates"]
    return {
        "*": ["*"],
        "instance": [f"{arn}:instance/{i['InstanceId']}" for i in nodes],
        "volume": [
            f"{arn}:volume/{m['Ebs']['VolumeId']}" for i in nodes for m in i["BlockDeviceMappings"]
        ],
        "network-interface": [
            f"{arn}:network-interface/{n['NetworkInterfaceId']}"
            for i in nodes
            for n in i["NetworkInterfaces"]
        ],
        "image": sorted({f"arn:aws:ec2:{REGION}::image/{i['ImageId']}" for i in nodes}),
        "subnet": sorted({f"{arn}:subnet/{i['SubnetId']}" for i in nodes}),
        "security-group": [f"{arn}:security-group/{group['GroupId']}"],
        "vpc": [f"{arn}:vpc/{group['VpcId']}"],
        "key-pair": [f"{arn}:key-pair/{keys.key_name(CLUSTER)}"],
        # GetRole/GetInstanceProfile of a name that does not exist yet is authorized
        # against the ARN without the path: both forms must be allowed.
        # PassRole: the role exists, so its ARN has its path.
        "passed-role": [role["Arn"]],
        "role": [role["Arn"], f"arn:aws:iam::{ACCOUNT}:role/{role['RoleName']}"],
        "instance-profile": [
            profile["InstanceProfile"]["Arn"],
            f"arn:aws:iam::{ACCOUNT}:instance-profile/{profile['InstanceProfile']['InstanceProfileName']}",
        ],
        "bucket": [f"arn:aws:s3:::{bucket}"],
        "object": [f"arn:aws:s3:::{bucket}/inputs/x", f"arn:aws:s3:::{bucket}/jobs/index.json"],
        "ami-parameter": [f"arn:aws:ssm:{REGION}::parameter{parameter}"],
        "join-parameter": [selfjoin.parameter_arn(REGION, ACCOUNT, CLUSTER)],
        "vcpu-quota": [f"arn:aws:servicequotas:{REGION}:{ACCOUNT}:ec2/L-1216C47A"],
        "worker-group": [worker_group["AutoScalingGroupARN"]],
        "launch-template": [f"{arn}:launch-template/{template['LaunchTemplateId']}"],
        "autoscaling-service-role": [
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/"
            "AWSServiceRoleForAutoScaling"
        ],
    }


def _drive_s3_like_jobs(moto_aws: MotoAws, tmp: Path) -> None:
    """The S3 calls the job commands make from the user's machine, through the same
    helpers (sparkube.aws.s3) and the same kind of client (AwsClients.s3)."""
    s3 = AwsClients(moto_aws.env.environ, REGION).s3
    bucket = storage.bucket_name(CLUSTER, REGION, ACCOUNT)
    small = tmp / "book.txt"
    small.write_text("in the beginning\n")
    big = tmp / "big.txt"  # over boto3's 8 MiB multipart threshold
    big.write_bytes(b"word " * (2 * 1024 * 1024))
    for path in (small, big, small):  # the third finds its object and uploads nothing
        s3data.upload_content_addressed(s3, bucket, path, path.name)
    s3data.put_json(s3, bucket, record_key("job-1"), {"id": "job-1"})
    assert s3data.get_text(s3, bucket, record_key("job-1"))
    assert s3data.get_text(s3, bucket, "jobs/missing.json") is None
    s3.put_object(Bucket=bucket, Key="results/job-1/part-0.csv", Body=b"the,1\n")
    assert s3data.list_prefixes(s3, bucket, "results/") == ["results/job-1/"]
    got = s3data.download_prefix(s3, bucket, "results/job-1/", tmp / "out")
    assert [p.name for p in got] == ["part-0.csv"]
    s3data.concat_objects(s3, bucket, ["results/job-1/part-0.csv"], tmp / "wc.csv", b"word,count\n")
    assert (tmp / "wc.csv").read_bytes() == b"word,count\nthe,1\n"


def test_policy_allows_every_call_and_nothing_more(
    cli: Cli, moto_aws: MotoAws, tmp_path: Path
) -> None:
    statements = _load_policy()
    env = moto_aws.env
    counter = CallCounter()
    with observe_calls(counter):
        plan = cli("plan", "--workers", "2", "--spot", "--allow-cidr", CIDR, env=env)
        assert plan.exit_code == 0, plan.stderr
        subnet = moto_aws.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]  # type: ignore[attr-defined]
        placed = cli("plan", "--subnet-id", subnet, "--allow-cidr", CIDR, env=env)
        assert placed.exit_code == 0, placed.stderr
        first = cli("up", "--until", "infra", "--workers", "1", "--ttl", "2h", "--yes",
                    "--allow-cidr", CIDR, env=env)  # fmt: skip
        assert first.exit_code == 0, first.stderr

        # Between runs, as a user might: a node stopped, a policy attached to the role.
        ec2: Any = moto_aws.client("ec2")
        iam: Any = moto_aws.client("iam")
        worker = next(
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=T.cluster_filter(CLUSTER))["Reservations"]
            for i in r["Instances"]
            if T.from_aws(i["Tags"]).get(T.ROLE) == "worker"
        )
        ec2.stop_instances(InstanceIds=[worker])
        extra = iam.create_policy(
            PolicyName="team-extra",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
                    ],
                }
            ),
        )["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=sparkube_iam.role_name(CLUSTER, REGION), PolicyArn=extra)

        # Resumed with one more worker: records the setting on the group (CreateTags),
        # starts the stopped node, launches the missing one.
        second = cli("up", "--until", "infra", "--workers", "2", "--yes",
                     "--allow-cidr", CIDR, env=env)  # fmt: skip
        assert second.exit_code == 0, second.stderr

        # The phases after infra reach AWS only through PhaseContext.record_done (a tag
        # on the group) and the addons phase's prices; the nodes and kubernetes phases
        # read ctx.cluster. Run those calls as the pipeline does.
        provider = AwsProvider.from_env(env, region=REGION)
        ctx = PhaseContext(
            spec=ClusterSpec(name=CLUSTER, workers=2),
            env=env,
            reporter=NullReporter(),
            provider=provider,
        )
        for phase in ("nodes", "kubernetes", "addons"):
            ctx.record_done(phase)
        # the kubernetes phase's join parameter (its token made over SSH), written twice
        # as a second up after expiry would (the second overwrites, untagged)
        assert provider.join_parameter_due(CLUSTER)
        for _ in range(2):
            provider.publish_join(ctx.spec, '{"expires": "2000-01-01T00:00:00Z"}')
        assert provider.join_parameter_due(CLUSTER)
        assert spark_phase._prices(ctx)[0] > 0

        for args in (("status",), ("status", "-o", "json"), ("ls",), ("ls", "--all-regions")):
            result = cli(*args, env=env)
            assert result.exit_code == 0, (args, result.stderr)
        doctor = cli("doctor", env=env)
        assert "vCPU quota" in doctor.stdout + doctor.stderr

        _drive_s3_like_jobs(moto_aws, tmp_path)
        resources = _resources(moto_aws)

        down = cli("down", "--yes", env=env)
        assert down.exit_code == 0, down.stderr
        assert "nothing tagged with it remains" in down.stdout

    called = set(counter.calls)
    unknown = called - set(OPERATIONS)
    assert not unknown, f"AWS operations not in the table (add them, and to the policy): {unknown}"
    for op, (path, needle) in NOT_DRIVEN_HERE.items():
        source = Path(__file__).resolve().parents[2] / path
        assert needle in source.read_text("utf-8"), f"{op} is no longer made in {path}"
    # The paths this test means to drive did run (else it proves less than it says).
    driven = (
        "ec2.StartInstances",
        "ec2.CreateTags",
        "iam.DetachRolePolicy",
        "s3.CreateMultipartUpload",
        "s3.DeleteObjects",
        "ec2.DescribeSpotPriceHistory",
        "ec2.DescribeRegions",
        "ec2.DescribeSubnets",
        "service-quotas.GetServiceQuota",
        "pricing.GetProducts",
        "ssm.PutParameter",
        "ssm.DeleteParameter",
    )
    for op in driven:
        assert op in called, op

    needed: set[str] = set()
    missing: list[str] = []
    for op in sorted(called | set(NOT_DRIVEN_HERE)):
        for action, kind in OPERATIONS[op]:
            needed.add(action)
            for arn in resources[kind]:
                if not allowed(statements, action, arn):
                    missing.append(f"{op} needs {action} on {arn}")
    assert not missing, "docs/iam-policy.json does not allow:\n" + "\n".join(missing)

    granted = {a for st in statements for a in _as_list(st["Action"])}
    assert all("*" not in a for a in granted), "actions are listed one by one"
    unused = granted - needed
    assert not unused, f"docs/iam-policy.json grants actions nothing calls: {sorted(unused)}"


def test_policy_conditions_name_what_sparkube_writes() -> None:
    """The conditions the test above cannot evaluate at least name the right things:
    the cluster tag sparkube puts on everything it creates, EC2 as the only service the
    role is passed to, and sparkube's name prefixes."""
    statements = _load_policy()
    by_sid = {st["Sid"]: st for st in statements}
    for sid in (
        "LaunchOnlyTaggedInstancesAndVolumes",
        "CreateTaggedGroup",
        "CreateTaggedLaunchTemplate",
    ):
        assert by_sid[sid]["Condition"] == {"Null": {f"aws:RequestTag/{T.CLUSTER}": "false"}}
    for sid in ("ChangeOnlyClusterInstancesAndGroup", "ChangeOnlyClusterLaunchTemplates"):
        assert by_sid[sid]["Condition"] == {"Null": {f"aws:ResourceTag/{T.CLUSTER}": "false"}}
    linked = by_sid["AutoScalingServiceLinkedRole"]["Condition"]["StringEquals"]
    assert linked == {"iam:AWSServiceName": "autoscaling.amazonaws.com"}
    assert workergroup.group_name("x").startswith("sparkube-")
    passed = by_sid["PassNodeRoleToEc2Only"]["Condition"]["StringEquals"]
    assert passed == {"iam:PassedToService": "ec2.amazonaws.com"}
    assert sparkube_iam.PATH == "/sparkube/"
    assert sparkube_iam.role_name("x", REGION).startswith("sparkube-")
    assert keys.key_name("x").startswith("sparkube-")
    assert storage.bucket_name("x", REGION, ACCOUNT).startswith("sparkube-")
    # Statements with a condition never also carry an unconditioned "*" for the same
    # write action (that would make the condition moot).
    for st in statements:
        if st["Resource"] == "*" and "Condition" not in st:
            assert all(
                a.split(":", 1)[1].startswith(("Describe", "Get")) for a in _as_list(st["Action"])
            ), st["Sid"]
