//go:build tools

// Package tools records the node commands built from this module so that
// `go mod tidy` keeps their dependencies. Build them with tools/nodes/build.sh.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
