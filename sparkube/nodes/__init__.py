"""Node work over SSH: boot-time preparation, the fan-out helper, kubeadm, kubeconfig."""
