"""sparkube's in-cluster controller: one pod on the control plane (``sparkube-system``
namespace) that admits queued jobs whole (:mod:`~sparkube.controller.admission`), one
replica acting at a time (:mod:`~sparkube.controller.lease`). It imports only the
standard library, lightkube and sparkube's light modules, so the bundle it runs from
(sparkube's package and its requirements, from the cluster's bucket) stays small."""

#: Where the controller runs and keeps its Lease: not ``spark``, whose drivers may
#: create pods (and so could run one with any service account of their namespace).
NAMESPACE = "sparkube-system"
