"""sparkube: a self-managed Kubernetes cluster on EC2 for Spark jobs."""

__version__ = "0.1.0"
