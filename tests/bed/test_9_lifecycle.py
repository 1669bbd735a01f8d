"""What ends a cluster's life, on the shared real-node cluster (tests/fixtures/bedcluster.py),
last in this package: an EC2 stop and start act on a machine; a node that joins after
``up`` gets its kubelet serving certificate from the in-cluster approver; ``down``
terminates the instances and their machines go; and nothing sparkube printed in the whole
package holds a secret."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import warnings
from typing import Any

from sparkube.model import WORKER, Node
from sparkube.nodes import kubeadm
from tests.fixtures.bedcluster import ADMIN, BedCluster
from tests.fixtures.nodebed import REAL_NODES, approver_missing

pytestmark = REAL_NODES


def test_an_ec2_stop_and_start_act_on_the_machine(bed_cluster: BedCluster) -> None:
    """A stop in EC2 powers the machine off and keeps its disk; a start boots it again
    (the user data does not run again) and the node is Ready again."""
    c = bed_cluster
    worker = c.machines.by_name()["worker-2"]
    before = len(worker.events)  # (a job test may have stopped and started it already)
    c.ec2.stop_instances(InstanceIds=[worker.instance_id])
    c.machines.wait(
        lambda m: not c.bed.running("worker-2"), timeout=60, what="worker-2 off after a stop"
    )
    c.ec2.start_instances(InstanceIds=[worker.instance_id])
    c.machines.wait(
        lambda m: c.bed.running("worker-2"), timeout=60, what="worker-2 on after a start"
    )
    c.bed.wait_for(
        "worker-2",
        "systemctl is-active cloud-init-standin.service",
        timeout=60,
        what="the cloud-init stand-in done after the start",
    )
    out = c.bed.run("worker-2", "cat /var/log/cloud-init-output.log").stdout
    assert out.count("user data exited") == 1, out[-2000:]
    assert worker.events[0][0] == "boot", worker.events
    assert [e for e, _ in worker.events[before:]] == ["stop", "start"], worker.events
    c.kubectl("wait --for=condition=Ready node/worker-2 --timeout=180s")
    # EC2 gives a started instance a new public IP (moto too): the machine answers SSH
    # at the one EC2 now reports, as a resume `up` reaches it.
    (inst,) = c.ec2.describe_instances(InstanceIds=[worker.instance_id])["Reservations"][0][
        "Instances"
    ]
    assert worker.public_ip == inst["PublicIpAddress"], (worker.public_ip, inst)
    with socket.create_connection((inst["PublicIpAddress"], 22), timeout=20) as ssh:
        assert ssh.recv(64).startswith(b"SSH-")


#: The reason postfinance's kubelet-csr-approver writes on the CSRs it approves
#: (sparkube's own approval during ``up`` writes SparkubeApprove).
APPROVER_REASON = "kubelet-serving cert validated"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"


def _csr_pem(cn: str, dns: list[str], ips: list[str]) -> bytes:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def _conditions(csr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (csr.get("status") or {}).get("conditions") or []}


def test_a_node_joining_later_gets_its_serving_certificate(bed_cluster: BedCluster) -> None:
    """After ``up`` has finished (so sparkube approves nothing any more), a fourth
    instance of the cluster, launched in moto with a worker's launch settings and user
    data, boots and joins with kubeadm outside sparkube (as a replaced or added node
    would): the in-cluster approver (postfinance's kubelet-csr-approver, on the control
    plane) approves its kubelet-serving request, so ``kubectl logs`` of a pod there
    answers; forged kubelet-serving requests made with that node's own credentials (an
    address outside the VPC, another node's name, another node's identity) are denied.
    """
    missing = approver_missing()
    if missing:
        # Built from its source, which no package registry serves (tools/nodes/README.md):
        # where build.sh had none, the addon's image is not on the bed.
        warnings.warn(f"later join not checked: {missing}", stacklevel=1)
        return
    c = bed_cluster
    bed, machines, ec2, cluster = c.bed, c.machines, c.ec2, c.name
    approver = c.kubectl_json(
        "-n kube-system get pods -l app.kubernetes.io/name=kubelet-csr-approver"
    )["items"]
    assert [p["spec"].get("nodeName") for p in approver] == ["control-plane"], approver
    assert approver[0]["status"]["phase"] == "Running", approver[0]["status"]
    t0 = time.monotonic()
    later = "worker-3"
    addresses = {name: m.private_ip for name, m in machines.by_name().items()}
    w1 = machines.by_name()["worker-1"].instance_id
    inst = ec2.describe_instances(InstanceIds=[w1])["Reservations"][0]["Instances"][0]
    data = ec2.describe_instance_attribute(InstanceId=w1, Attribute="userData")
    tags = {"sparkube:cluster": cluster, "sparkube:role": WORKER, "sparkube:node": later}
    ec2.run_instances(
        ImageId=inst["ImageId"], InstanceType=inst["InstanceType"], KeyName=inst["KeyName"],
        SubnetId=inst["SubnetId"], SecurityGroupIds=[g["GroupId"] for g in inst["SecurityGroups"]],
        UserData=base64.b64decode(data["UserData"]["Value"]).decode(), MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )  # fmt: skip
    machines.wait(lambda m: later in bed.nodes, timeout=60, what=f"{later} booted")
    address = machines.by_name()[later].private_ip
    bed.wait_user_data(later, timeout=300)
    join = kubeadm.parse_join_command(bed.run("control-plane", kubeadm.token_command()).stdout)
    config = kubeadm.render_join_config(join, Node(later, WORKER, private_ip=address))
    bed.run(later, "install -m 0600 /dev/stdin /root/join.yaml", input=config)
    bed.run(later, "kubeadm join --config /root/join.yaml", timeout=600)

    user = f"system:node:{later}"
    deadline = time.monotonic() + 180
    approved: list[dict[str, Any]] = []
    while not approved:
        csrs = [
            c
            for c in c.kubectl_json("get csr")["items"]
            if c["spec"]["username"] == user and c["spec"]["signerName"] == SERVING_SIGNER
        ]
        approved = [c for c in csrs if "Approved" in _conditions(c)]
        if time.monotonic() > deadline:
            print(bed.run("control-plane", f"{ADMIN} -n kube-system logs "
                          "deploy/kubelet-csr-approver", check=False).stdout[-3000:])  # fmt: skip
            raise AssertionError(f"no approved serving CSR of {later}: {csrs}")
        time.sleep(1)
    assert _conditions(approved[0])["Approved"]["reason"] == APPROVER_REASON, approved[0]

    # kubectl logs reaches the new node's kubelet over TLS with the approved certificate.
    bed.run(
        "control-plane",
        f"{ADMIN} run later-logs --image=sparkube.test/shell:1 "
        f"""--restart=Never --overrides='{{"spec":{{"nodeName":"{later}"}}}}' --command -- """
        f"echo hello from {later}",
    )
    phase = c.wait_pod("later-logs", timeout=180)
    logs = bed.run("control-plane", f"{ADMIN} logs later-logs", check=False)
    assert phase == "Succeeded" and f"hello from {later}" in logs.stdout, (phase, logs.stderr)
    took = time.monotonic() - t0

    # Forged requests, made with the new node's own kubelet credentials: one for another
    # node's identity the API server itself refuses (NodeRestriction); the approver
    # denies the others.
    forged = {
        "forged-outside-vpc": (user, [later], ["192.0.2.7"]),
        "forged-other-name": (user, ["control-plane"], [address]),
        "forged-other-node": ("system:node:worker-1", ["worker-1"], [addresses["worker-1"]]),
    }
    for name, (cn, dns, ips) in list(forged.items()):
        obj = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {
                "request": base64.b64encode(_csr_pem(cn, dns, ips)).decode(),
                "signerName": SERVING_SIGNER,
                "usages": ["digital signature", "server auth"],
            },
        }
        made = bed.run(later, "kubectl --kubeconfig /etc/kubernetes/kubelet.conf create -f -",
                       input=json.dumps(obj), check=False)  # fmt: skip
        if cn != user:
            assert made.returncode != 0, made.stdout
            assert f"can only create a node CSR with CN={user}" in made.stderr, made.stderr
            del forged[name]
        else:
            assert made.returncode == 0, made.stderr
    deadline = time.monotonic() + 60
    while True:
        found = {c["metadata"]["name"]: c for c in c.kubectl_json("get csr")["items"]}
        decided = {n: _conditions(found[n]) for n in forged if _conditions(found[n])}
        if len(decided) == len(forged) or time.monotonic() > deadline:
            break
        time.sleep(1)
    for name in forged:
        csr = found[name]
        assert csr["spec"]["username"] == user  # the API server says who asked
        conditions = _conditions(csr)
        assert "Approved" not in conditions and not csr["status"].get("certificate"), csr
        assert "Denied" in conditions, (name, csr.get("status"))
    print(json.dumps({"later_join_to_logs_s": round(took, 1)}))


def test_down_terminates_the_instances_and_their_machines_go(bed_cluster: BedCluster) -> None:
    c = bed_cluster
    t0 = time.monotonic()
    down = c.cli("down", "--cluster", c.name, "--yes")
    c.down = down.exit_code == 0
    assert down.exit_code == 0, down.stderr[-3000:]
    assert "nothing tagged with it remains" in down.stdout, down.stdout
    assert [b["Name"] for b in c.s3().list_buckets()["Buckets"]] == []
    assert not c.env.cluster_dir(c.name).exists()
    c.machines.wait(lambda m: not c.bed.nodes, timeout=60, what="machines removed after down")
    assert not c.machines.errors, c.machines.errors[-1]
    assert all(m.events[-1][0] == "remove" for m in c.machines.machines.values()), {
        m.name: m.events for m in c.machines.machines.values()
    }
    left = c.ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}]
    )
    assert not [i for r in left["Reservations"] for i in r["Instances"]]
    # the workers' group, its launch template and the self-join parameter went too
    assert c.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert c.ec2.describe_launch_templates()["LaunchTemplates"] == []
    params = c.client("ssm").describe_parameters()["Parameters"]
    assert not [p["Name"] for p in params if p["Name"].startswith("/sparkube/")], params
    print(json.dumps({"down_s": round(time.monotonic() - t0, 1)}))


def test_nothing_sparkube_printed_holds_a_secret(bed_cluster: BedCluster) -> None:
    """Last: everything sparkube printed over the cluster's life (every command of this
    package, ``up`` to ``down``, the dashboard's process included) and what it keeps on
    disk after ``down`` hold none of the cluster's secrets (BedCluster.secrets: the
    cluster's private key, the admin's client key, the bootstrap tokens, the AWS secret
    key), no private key and no bearer token."""
    c = bed_cluster
    assert c.secrets and c.transcript
    everything = "\n".join(c.transcript + list(c.written().values()))
    for what, value in c.secrets.items():
        assert value and value not in everything, f"{what} appears in sparkube's output"
    assert "PRIVATE KEY" not in everything
    assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.", everything), "a bearer token leaked"
