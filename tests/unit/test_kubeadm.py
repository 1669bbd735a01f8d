"""kubeadm configs and the strict join-command parser."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from sparkube.model import CONTROL_PLANE, WORKER, Node
from sparkube.nodes.kubeadm import (
    JoinCommand,
    JoinCommandError,
    parse_join_command,
    render_init_config,
    render_join_config,
)
from sparkube.spec import ClusterSpec

TOKEN = "abcdef.0123456789abcdef"
HASH = "sha256:" + "0123456789abcdef" * 4
LINE = f"kubeadm join 10.0.1.23:6443 --token {TOKEN}     --discovery-token-ca-cert-hash {HASH} "
CP = Node(
    name="control-plane",
    role=CONTROL_PLANE,
    public_ip="54.1.2.3",
    private_ip="10.0.1.23",
    public_dns="ec2-54-1-2-3.compute-1.amazonaws.com",
)


@pytest.mark.parametrize(
    "text",
    [
        LINE,
        LINE + "\n",
        LINE.replace(" ", "  ") + "\r\n",
        "W1125 12:00:00.000 warning: something\n" + LINE + "\n\n",
        "\n\n" + LINE.rstrip() + "\t \r\n",
        f"kubeadm join 10.0.1.23:6443 --token {TOKEN} \\\n"
        f"    --discovery-token-ca-cert-hash {HASH}",
        f"kubeadm join 10.0.1.23:6443 --token={TOKEN} --discovery-token-ca-cert-hash={HASH}",
        LINE + "\n" + LINE,  # the same line twice
    ],
)
def test_parses_join_commands_with_noise(text: str) -> None:
    join = parse_join_command(text)
    assert join == JoinCommand("10.0.1.23:6443", TOKEN, (HASH,))
    assert TOKEN not in repr(join)


def test_parses_hostname_endpoint_and_several_hashes() -> None:
    other = "sha256:" + "f" * 64
    join = parse_join_command(
        f"kubeadm join api.example.com:6443 --token {TOKEN} "
        f"--discovery-token-ca-cert-hash {HASH} --discovery-token-ca-cert-hash {other}"
    )
    assert join.endpoint == "api.example.com:6443"
    assert join.ca_cert_hashes == (HASH, other)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "did not print"),
        ("error: something went wrong", "did not print"),
        (LINE.replace(TOKEN, "ABCDEF.0123456789abcdef"), "token"),
        (LINE.replace(TOKEN, "abcdef0123456789abcdef"), "token"),
        (LINE.replace(TOKEN, "abcde.0123456789abcdef"), "token"),
        (LINE.replace(TOKEN, "abcdef.0123456789abcdefg"), "token"),
        (LINE.replace(TOKEN, "abcdef-0123456789abcdef"), "token"),
        (LINE.replace(HASH, "sha256:" + "0" * 63), "hash"),
        (LINE.replace(HASH, "sha256:" + "A" * 64), "hash"),
        (LINE.replace(HASH, "md5:" + "0" * 64), "hash"),
        (f"kubeadm join 10.0.1.23:6443 --token {TOKEN}", "hash"),
        (f"kubeadm join 10.0.1.23:6443 --discovery-token-ca-cert-hash {HASH}", "token"),
        (LINE.replace("10.0.1.23:6443", "10.0.1.23"), "endpoint"),
        (LINE.replace("10.0.1.23:6443", "10.0.1.23:99999"), "endpoint"),
        (LINE.replace("10.0.1.23:6443", "bad_host!:6443"), "endpoint"),
        (LINE + " --control-plane", "unexpected"),
        (LINE + " ; rm -rf /", "unexpected"),
        (LINE + "\n" + LINE.replace("10.0.1.23", "10.0.1.24"), "several"),
        (f"kubeadm join --token {TOKEN}", "endpoint"),
    ],
)
def test_rejects_malformed_join_commands(text: str, why: str) -> None:
    with pytest.raises(JoinCommandError) as err:
        parse_join_command(text)
    assert why in err.value.message
    assert TOKEN not in err.value.message


def test_init_config_v1beta4() -> None:
    spec = ClusterSpec(name="demo", pod_cidr="10.244.0.0/16")
    docs = list(yaml.safe_load_all(render_init_config(spec, CP, kubernetes_version="1.36.4")))
    init, cluster, kubelet = docs
    assert {d["apiVersion"] for d in docs[:2]} == {"kubeadm.k8s.io/v1beta4"}
    assert init["kind"] == "InitConfiguration"
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.1.23", "bindPort": 6443}
    assert init["nodeRegistration"]["name"] == "control-plane"
    assert init["nodeRegistration"]["criSocket"] == "unix:///var/run/containerd/containerd.sock"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.0.1.23"}
    ]
    assert cluster["kind"] == "ClusterConfiguration"
    assert cluster["kubernetesVersion"] == "v1.36.4"
    assert cluster["clusterName"] == "demo"
    assert cluster["networking"]["podSubnet"] == "10.244.0.0/16"
    assert cluster["apiServer"]["certSANs"] == [
        "54.1.2.3",
        "10.0.1.23",
        "ec2-54-1-2-3.compute-1.amazonaws.com",
    ]
    assert kubelet["kind"] == "KubeletConfiguration"
    assert kubelet["cgroupDriver"] == "systemd"


def test_init_config_follows_the_pod_cidr() -> None:
    spec = ClusterSpec(pod_cidr="10.50.0.0/16")
    docs = list(yaml.safe_load_all(render_init_config(spec, CP, kubernetes_version="v1.37.1")))
    assert docs[1]["networking"]["podSubnet"] == "10.50.0.0/16"
    assert docs[1]["kubernetesVersion"] == "v1.37.1"


def test_join_config_carries_the_token_in_a_file() -> None:
    worker = Node(name="worker-2", role=WORKER, private_ip="10.0.1.40")
    doc = yaml.safe_load(render_join_config(JoinCommand("10.0.1.23:6443", TOKEN, (HASH,)), worker))
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert doc["kind"] == "JoinConfiguration"
    assert doc["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "10.0.1.23:6443",
        "token": TOKEN,
        "caCertHashes": [HASH],
    }
    assert doc["nodeRegistration"]["name"] == "worker-2"


def test_a_worker_joined_over_ssh_gets_its_provider_id_like_one_that_joins_by_itself() -> None:
    worker = Node(
        name="worker-2",
        role=WORKER,
        private_ip="10.0.1.40",
        instance_id="i-0abc",
        availability_zone="eu-west-3b",
    )
    doc = yaml.safe_load(render_join_config(JoinCommand("10.0.1.23:6443", TOKEN, (HASH,)), worker))
    assert doc["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.0.1.40"},
        {"name": "provider-id", "value": "aws:///eu-west-3b/i-0abc"},
        {"name": "node-labels", "value": "sparkube.io/market=on-demand"},
    ]
    spot = dataclasses.replace(worker, spot=True)
    doc = yaml.safe_load(render_join_config(JoinCommand("10.0.1.23:6443", TOKEN, (HASH,)), spot))
    assert doc["nodeRegistration"]["kubeletExtraArgs"][-1] == {
        "name": "node-labels",
        "value": "sparkube.io/market=spot",
    }
