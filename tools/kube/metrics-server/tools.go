//go:build tools

// Package tools records the metrics-server command built from this module.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
