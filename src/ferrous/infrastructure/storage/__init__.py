"""Object store adapters: a local folder, S3 (and compatible: MinIO, Ceph, ...), memory.

``factory.object_store(settings)`` picks one from ``FERROUS_STORAGE_URL``; the S3 adapter is
imported only when asked for, so a server on local storage does not load aiobotocore.
"""
