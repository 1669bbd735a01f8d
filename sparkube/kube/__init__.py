"""Kubernetes API access (lightkube): clients, waits, server-side apply."""
