"""The settings of every AWS client rightsize makes (Pricing, EC2, S3, STS), in one place."""
from __future__ import annotations


def client_config(max_attempts: int, connect_timeout: float, read_timeout: float):
    """botocore client settings: standard-mode retries of throttling and transient errors (exponential
    backoff with jitter), ``max_attempts`` counting the first request too, and the connect / read
    timeouts in seconds."""
    from botocore.config import Config as BotoConfig

    # total_max_attempts counts the first request too; botocore's "max_attempts" would count retries only.
    return BotoConfig(retries={"mode": "standard", "total_max_attempts": max_attempts}, connect_timeout=connect_timeout,
                      read_timeout=read_timeout)
