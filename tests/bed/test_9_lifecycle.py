"""What ends a cluster's life, on the shared real-node cluster (tests/fixtures/bedcluster.py),
last in this package: an EC2 stop and start act on a machine; a node that joins after
``up`` gets its kubelet serving certificate from the in-cluster approver; ``down``
terminates the instances and their machines go; and nothing sparkube printed in the whole
package holds a secret."""

from __future__ import annotations

import base64
import json
import re
import time
import warnings
from typing import Any

from sparkube.aws import workergroup
from sparkube.nodes import selfjoin
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


def test_a_worker_the_group_launches_joins_by_itself(bed_cluster: BedCluster) -> None:
    """After ``up`` has finished, the workers' Auto Scaling group is asked for one more
    worker (as the controller's scale-out does): moto launches it from the launch
    template, nobody names it, and the bed boots it from its own user data. It joins by
    itself (issue 19, item 3): its ``sparkube-join`` unit waits for its preparation,
    reads its identity and its role's credentials from its own instance metadata, the
    join parameter ``up`` wrote from SSM (a SigV4 GetParameter to moto), and runs
    ``kubeadm join`` under its instance id with ``providerID aws:///ZONE/INSTANCE``; no
    SSH from sparkube. The in-cluster approver (postfinance's kubelet-csr-approver, on
    the control plane) approves its kubelet-serving request, so ``kubectl logs`` of a
    pod there answers; forged kubelet-serving requests made with that node's own
    credentials (an address outside the VPC, another node's name, another node's
    identity) are denied.
    """
    missing = approver_missing()
    if missing:
        # Built from its source, which no package registry serves (tools/nodes/README.md):
        # where build.sh had none, the addon's image is not on the bed.
        warnings.warn(f"later join not checked: {missing}", stacklevel=1)
        return
    c = bed_cluster
    bed, machines = c.bed, c.machines
    approver = c.kubectl_json(
        "-n kube-system get pods -l app.kubernetes.io/name=kubelet-csr-approver"
    )["items"]
    assert [p["spec"].get("nodeName") for p in approver] == ["control-plane"], approver
    assert approver[0]["status"]["phase"] == "Running", approver[0]["status"]
    addresses = {name: m.private_ip for name, m in machines.by_name().items()}
    known = {m.instance_id for m in machines.machines.values()}
    autoscaling = c.client("autoscaling")
    group = workergroup.group_name(c.name)
    (g,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ]
    t0 = time.monotonic()
    autoscaling.set_desired_capacity(
        AutoScalingGroupName=group, DesiredCapacity=g["DesiredCapacity"] + 1
    )
    machines.wait(
        lambda m: any(i not in known and m.machines[i].name in bed.nodes for i in m.machines),
        timeout=120,
        what="the group's new worker booted",
    )
    (later,) = [m.name for i, m in machines.machines.items() if i not in known]
    assert later.startswith("i-")  # nobody named it: its instance id is its name
    address = machines.machines[later].private_ip
    deadline = time.monotonic() + 600
    while c.kubectl(f"get node {later}", check=False).returncode != 0:
        if time.monotonic() > deadline or not bed.running(later):
            why = "journalctl -u sparkube-join --no-pager | tail -40; tail /var/log/sparkube-prep*"
            print(bed.run(later, why, check=False).stdout)
            raise AssertionError(f"{later} did not join by itself")
        time.sleep(2)
    joined = time.monotonic() - t0
    node = c.kubectl_json(f"get node {later}")
    (inst,) = c.ec2.describe_instances(InstanceIds=[later])["Reservations"][0]["Instances"]
    zone = inst["Placement"]["AvailabilityZone"]
    assert node["spec"]["providerID"] == f"aws:///{zone}/{later}", node["spec"]
    unit = bed.run(later, "journalctl -u sparkube-join --no-pager").stdout
    assert f"written for {later} in {zone}" in unit, unit[-3000:]
    assert bed.run(later, f"test -e {selfjoin.CONFIG_PATH}", check=False).returncode != 0
    c.kubectl(f"wait --for=condition=Ready node/{later} --timeout=300s")

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
    print(json.dumps({"self_join_s": round(joined, 1), "later_join_to_logs_s": round(took, 1)}))


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
