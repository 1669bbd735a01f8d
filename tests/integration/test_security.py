"""Security checks on the state `sparkube up` leaves (issue 11), one test per check.

The AWS checks run `up --until infra` once for real against the moto server (two
operator CIDRs, one of them IPv6) and read everything back with plain boto3 from the
server; no address moto hands out is ever contacted. The local-file checks look at what
`up` wrote under SPARKUBE_HOME and at the kubeconfig writers `up` and `kubeconfig --merge`
use. The monitoring RBAC is checked against what the programs document they read
(FACTS-MONITORING.md); the Spark Role is proved rule by rule with real jobs in
tests/bed/test_5_rbac.py.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import ipaddress
import json
import os
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkube.aws import userdata
from sparkube.cli.app import run
from sparkube.monitoring.addons import render_metrics_server, render_opex
from sparkube.nodes import selfjoin
from tests.fixtures.common import isolated_environment
from tests.fixtures.moto_server import MotoAws, moto_environ, seed_ubuntu

pytestmark = pytest.mark.integration

CLUSTER = "sec"
CIDRS = ("203.0.113.7/32", "2001:db8:7::/64")
OPEN = {"0.0.0.0/0", "::/0"}
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


@dataclasses.dataclass
class Upped:
    aws: MotoAws
    group: dict[str, Any]
    instances: list[dict[str, Any]]
    bucket: str
    role: str
    stdout: str
    stderr: str

    def client(self, service: str) -> Any:
        return self.aws.client(service)


def _doc(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def upped(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upped]:
    """A fresh moto, then `sparkube up --until infra` with two workers, run once for the
    module (each check below only reads)."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        response.read()
    amis = seed_ubuntu(moto_url, "us-east-1")
    base = isolated_environment(tmp_path_factory.mktemp("security"))
    env = dataclasses.replace(
        base, environ={**base.environ, **moto_environ(moto_url), "AWS_MAX_ATTEMPTS": "2"}
    )
    aws = MotoAws(moto_url, env, amis)
    out, err = io.StringIO(), io.StringIO()
    args = ["up", "--cluster", CLUSTER, "--until", "infra", "--workers", "2"]
    for cidr in CIDRS:
        args += ["--allow-cidr", cidr]
    code = run(args, env=env, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    ec2, s3 = aws.client("ec2"), aws.client("s3")
    tag = [{"Name": "tag:sparkube:cluster", "Values": [CLUSTER]}]
    (group,) = ec2.describe_security_groups(Filters=tag)["SecurityGroups"]  # type: ignore[attr-defined]
    reservations = ec2.describe_instances(Filters=tag)["Reservations"]  # type: ignore[attr-defined]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 3
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]  # type: ignore[attr-defined]
    (bucket,) = [b for b in buckets if b.startswith(f"sparkube-{CLUSTER}-")]
    yield Upped(aws, group, instances, bucket, f"sparkube-{CLUSTER}-us-east-1",
                out.getvalue(), err.getvalue())  # fmt: skip
    down = ["down", "--cluster", CLUSTER, "--yes"]
    run(down, env=env, stdout=io.StringIO(), stderr=io.StringIO())


# --------------------------------------------------------------------------- network


def _sources(group: dict[str, Any]) -> set[tuple[str, int | None, int | None, str]]:
    found = set()
    for perm in group["IpPermissions"]:
        ports = (perm["IpProtocol"], perm.get("FromPort"), perm.get("ToPort"))
        found |= {(*ports, r["CidrIp"]) for r in perm.get("IpRanges", [])}
        found |= {(*ports, r["CidrIpv6"]) for r in perm.get("Ipv6Ranges", [])}
        found |= {(*ports, p["GroupId"]) for p in perm.get("UserIdGroupPairs", [])}
        found |= {(*ports, p["PrefixListId"]) for p in perm.get("PrefixListIds", [])}
    return found


def test_no_ingress_from_the_whole_internet(upped: Upped) -> None:
    for source in _sources(upped.group):
        assert source[3] not in OPEN, source
        if "/" in source[3]:
            assert ipaddress.ip_network(source[3]).prefixlen > 0, source


def test_ingress_is_exactly_ssh_and_api_from_the_operator_and_the_group_itself(
    upped: Upped,
) -> None:
    gid = upped.group["GroupId"]
    # moto reports protocol "-1" with FromPort/ToPort absent; AWS may say -1/-1.
    found = {(p, None if p == "-1" else f, None if p == "-1" else t, s)
             for p, f, t, s in _sources(upped.group)}  # fmt: skip
    expected: set[tuple[str, int | None, int | None, str]] = {("-1", None, None, gid)}
    expected |= {("tcp", port, port, cidr) for port in (22, 6443) for cidr in CIDRS}
    assert found == expected


def test_every_instance_is_only_in_the_cluster_group(upped: Upped) -> None:
    gid = upped.group["GroupId"]
    for inst in upped.instances:
        assert [g["GroupId"] for g in inst["SecurityGroups"]] == [gid]


# --------------------------------------------------------------------------- instances


def test_imdsv2_required_with_hop_limit_2_on_every_instance(upped: Upped) -> None:
    for inst in upped.instances:
        meta = inst["MetadataOptions"]
        assert meta["HttpTokens"] == "required", inst["InstanceId"]
        assert meta["HttpPutResponseHopLimit"] == 2, inst["InstanceId"]


def test_every_root_volume_is_encrypted(upped: Upped) -> None:
    ec2 = upped.client("ec2")
    ids = [m["Ebs"]["VolumeId"] for i in upped.instances for m in i["BlockDeviceMappings"]]
    assert len(ids) == len(upped.instances)
    volumes = ec2.describe_volumes(VolumeIds=ids)["Volumes"]
    assert [v["Encrypted"] for v in volumes] == [True] * len(ids)


def test_no_credentials_in_user_data_or_tags(upped: Upped) -> None:
    ec2 = upped.client("ec2")
    secrets = {upped.aws.env.environ["AWS_SECRET_ACCESS_KEY"], "PRIVATE KEY"}
    for inst in upped.instances:
        attr = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
        script = userdata.decode(base64.b64decode(attr["UserData"]["Value"]))
        tags = json.dumps(inst.get("Tags", []))
        for secret in secrets:
            assert secret not in script and secret not in tags


# --------------------------------------------------------------------------- bucket


def test_bucket_default_encryption(upped: Upped) -> None:
    s3 = upped.client("s3")
    config = s3.get_bucket_encryption(Bucket=upped.bucket)["ServerSideEncryptionConfiguration"]
    algorithms = {r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in config["Rules"]}
    assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}


def test_bucket_blocks_all_four_kinds_of_public_access(upped: Upped) -> None:
    s3 = upped.client("s3")
    block = s3.get_public_access_block(Bucket=upped.bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }


def test_bucket_acl_grants_nobody_else(upped: Upped) -> None:
    s3 = upped.client("s3")
    acl = s3.get_bucket_acl(Bucket=upped.bucket)
    for grant in acl["Grants"]:
        assert grant["Grantee"].get("URI") not in PUBLIC_GRANTEES, grant
        assert grant["Grantee"].get("ID") == acl["Owner"]["ID"], grant


def test_bucket_has_no_public_policy(upped: Upped) -> None:
    s3 = upped.client("s3")
    try:
        policy = _doc(s3.get_bucket_policy(Bucket=upped.bucket)["Policy"])
    except Exception as exc:  # sparkube sets no bucket policy: the expected case
        assert "NoSuchBucketPolicy" in str(exc)
        return
    for st in policy["Statement"]:
        if st["Effect"] == "Allow":
            assert st.get("Principal") not in ("*", {"AWS": "*"}), st


# --------------------------------------------------------------------------- IAM


def test_only_ec2_may_assume_the_instance_role(upped: Upped) -> None:
    iam = upped.client("iam")
    trust = _doc(iam.get_role(RoleName=upped.role)["Role"]["AssumeRolePolicyDocument"])
    assert [(s["Effect"], s["Principal"], s["Action"]) for s in trust["Statement"]] == [
        ("Allow", {"Service": "ec2.amazonaws.com"}, "sts:AssumeRole")
    ]


def test_instance_role_has_no_managed_policy(upped: Upped) -> None:
    iam = upped.client("iam")
    assert iam.list_attached_role_policies(RoleName=upped.role)["AttachedPolicies"] == []


def test_instance_role_reaches_only_the_cluster_bucket_and_its_join_parameter(
    upped: Upped,
) -> None:
    iam = upped.client("iam")
    names = iam.list_role_policies(RoleName=upped.role)["PolicyNames"]
    assert names
    bucket_arn = f"arn:aws:s3:::{upped.bucket}"
    account = upped.client("sts").get_caller_identity()["Account"]
    parameter_arn = selfjoin.parameter_arn("us-east-1", account, CLUSTER)
    for name in names:
        doc = _doc(iam.get_role_policy(RoleName=upped.role, PolicyName=name)["PolicyDocument"])
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st
            actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
            resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
            for action in actions:
                assert "*" not in action, action
                if action == "ssm:GetParameter":  # the self-join reads its parameter only
                    assert resources == [parameter_arn], st
                elif action.startswith("autoscaling:") or action == "ssm:PutParameter":
                    # the controller (its token renewal, its scaling), on the control plane
                    (arn,) = st["Condition"]["StringEquals"].values()
                    assert list(st["Condition"]["StringEquals"]) == ["ec2:SourceInstanceARN"]
                    assert arn.split("/")[-1] in {i["InstanceId"] for i in upped.instances}
                    if action == "ssm:PutParameter":
                        assert resources == [parameter_arn], st
                    elif action != "autoscaling:DescribeAutoScalingGroups":
                        assert resources[0].endswith(
                            f"autoScalingGroupName/sparkube-{CLUSTER}-workers"
                        )
                else:
                    assert action.startswith("s3:"), action
                    assert all(r in (bucket_arn, bucket_arn + "/*") for r in resources), st


def test_instances_carry_the_cluster_instance_profile(upped: Upped) -> None:
    iam = upped.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName=upped.role)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [upped.role]
    ec2 = upped.client("ec2")
    assocs = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    # moto associates the profile with the first instance of each RunInstances only
    assert assocs and all(a["IamInstanceProfile"]["Arn"] == profile["Arn"] for a in assocs)


# --------------------------------------------------------------------------- local files


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ssh_key_is_0600_in_0700_folders(upped: Upped) -> None:
    env = upped.aws.env
    folder = env.cluster_dir(CLUSTER)
    assert _mode(folder / "id_ed25519") == 0o600
    assert _mode(folder / "id_ed25519.pub") == 0o600
    assert _mode(folder) == 0o700 and _mode(env.home) == 0o700
    # nothing else under SPARKUBE_HOME is readable by group or others
    for path in env.home.rglob("*"):
        assert _mode(path) & 0o077 == 0, path


def test_kubeconfig_written_0600_even_over_an_open_file(tmp_path: Path) -> None:
    """The writers `up` (save_kubeconfig) and `kubeconfig --merge` use: under a lax umask
    and over files and folders left world-readable, the result is 0600 in 0700."""
    from sparkube.nodes.kubeconfig import merge_into_user_config, save_kubeconfig

    env = isolated_environment(tmp_path)
    env = dataclasses.replace(env, environ={**env.environ, "KUBECONFIG": ""})
    text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": CLUSTER,
        "clusters": [{"name": CLUSTER, "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": CLUSTER, "context": {"cluster": CLUSTER, "user": CLUSTER}}],
        "users": [{"name": CLUSTER, "user": {"token": "t"}}],
    })  # fmt: skip
    old = os.umask(0o022)
    try:
        cdir = env.cluster_dir(CLUSTER)
        cdir.mkdir(parents=True, mode=0o755)
        env.home.chmod(0o755)
        cdir.chmod(0o755)
        (cdir / "kubeconfig").write_text("old")
        (cdir / "kubeconfig").chmod(0o644)
        kube_dir = Path(env.environ["HOME"]) / ".kube"
        kube_dir.mkdir(mode=0o755)
        saved = save_kubeconfig(env, CLUSTER, text)
        merged = merge_into_user_config(env, CLUSTER)
    finally:
        os.umask(old)
    assert (_mode(saved), _mode(saved.parent), _mode(env.home)) == (0o600, 0o700, 0o700)
    assert merged == kube_dir / "config"
    assert (_mode(merged), _mode(kube_dir)) == (0o600, 0o700)


# --------------------------------------------------------------------------- monitoring RBAC

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind",
               "impersonate", "*"}  # fmt: skip
#: What the programs read, from FACTS-MONITORING.md (upstream manifests and sources):
#: kube-opex-analytics polls namespaces, nodes, pods and metrics.k8s.io nodes/pods with
#: plain GETs; metrics-server reads nodes/metrics and pods/nodes (get, list, watch).
DOCUMENTED_READS = {
    "kube-opex-analytics": {
        ("", "namespaces"), ("", "nodes"), ("", "pods"),
        ("metrics.k8s.io", "nodes"), ("metrics.k8s.io", "pods"),
    },
    "metrics-server": {("", "nodes/metrics"), ("", "pods"), ("", "nodes")},
}  # fmt: skip


def _roles(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d and d["kind"] in ("Role", "ClusterRole")]


def _monitoring_texts() -> dict[str, str]:
    return {
        "kube-opex-analytics": render_opex(0.25),
        "metrics-server": render_metrics_server(),
    }


@pytest.mark.parametrize("program", sorted(DOCUMENTED_READS))
def test_monitoring_rbac_is_read_only_and_never_secrets(program: str) -> None:
    roles = _roles(_monitoring_texts()[program])
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert not set(rule["verbs"]) & WRITE_VERBS, (role["metadata"]["name"], rule)
            assert "secrets" not in rule.get("resources", []), rule
            assert "*" not in rule.get("resources", []) and "*" not in rule.get("apiGroups", [])
            assert "nonResourceURLs" not in rule, rule


@pytest.mark.parametrize("program", sorted(DOCUMENTED_READS))
def test_monitoring_rbac_grants_only_what_the_program_reads(program: str) -> None:
    granted = set()
    for role in _roles(_monitoring_texts()[program]):
        if role["metadata"]["name"] == "system:aggregated-metrics-reader":
            continue  # aggregates into view/edit/admin for users; bound to no program
        for rule in role["rules"]:
            granted |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted <= DOCUMENTED_READS[program], granted - DOCUMENTED_READS[program]


#: Built-in roles upstream binds metrics-server to: reading the API server's client-CA
#: ConfigMap in kube-system, and delegating authentication/authorization (TokenReview,
#: SubjectAccessReview creates, which change nothing).
BUILTIN_ROLES = {
    ("Role", "extension-apiserver-authentication-reader"),
    ("ClusterRole", "system:auth-delegator"),
}


@pytest.mark.parametrize("program", sorted(DOCUMENTED_READS))
def test_monitoring_bindings_bind_only_its_own_account_to_known_roles(program: str) -> None:
    docs = [d for d in yaml.safe_load_all(_monitoring_texts()[program]) if d]
    own = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"].endswith("Role")}
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for b in bindings:
        ref = (b["roleRef"]["kind"], b["roleRef"]["name"])
        assert ref in own | BUILTIN_ROLES, ref
        assert ref != ("ClusterRole", "system:aggregated-metrics-reader"), ref
        assert [(s["kind"], s["name"]) for s in b["subjects"]] == [("ServiceAccount", program)]
