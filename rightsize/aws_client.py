"""The settings of every AWS client rightsize makes (Pricing, EC2, S3, STS), and the shape of the AWS
names the config names (a region, an IAM role), in one place."""
from __future__ import annotations

import re

REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]+")


def client_config(max_attempts: int, connect_timeout: float, read_timeout: float):
    """botocore client settings: standard-mode retries of throttling and transient errors (exponential
    backoff with jitter), ``max_attempts`` counting the first request too, and the connect / read
    timeouts in seconds."""
    from botocore.config import Config as BotoConfig

    # total_max_attempts counts the first request too; botocore's "max_attempts" would count retries only.
    return BotoConfig(retries={"mode": "standard", "total_max_attempts": max_attempts}, connect_timeout=connect_timeout,
                      read_timeout=read_timeout)
