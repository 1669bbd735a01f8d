"""Everything boto3: keys, network, IAM, storage, instances, pricing, discovery, teardown.

The rest of sparkube uses :class:`sparkube.aws.provider.AwsProvider` and the typed
records it returns; no boto3 dict leaves this package.
"""
