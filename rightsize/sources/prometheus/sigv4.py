"""SigV4 for Amazon Managed Service for Prometheus (AMP): a requests auth that signs each request.

AMP accepts only requests signed with AWS Signature Version 4 for the service ``aps``. botocore's
signer does the signing (no new dependency): :class:`SigV4` turns each prepared request (method, URL
with its query, body, content type) into a botocore ``AWSRequest``, signs it, and copies the
``Authorization``, ``X-Amz-Date`` and ``X-Amz-Security-Token`` headers back. It sits in the one
requests session of :class:`~.client.Client`, so range queries (POSTed bodies), instant queries, series
and label lookups are all signed, retries included (each attempt is signed again when re-prepared).

Only ``host``, ``content-type`` and the ``x-amz-*`` headers are signed, so a proxy that rewrites
``Accept-Encoding`` or ``Connection`` does not break the signature. The query string is sent in the
RFC 3986 form SigV4 canonicalises (``%20``, not ``+``), so what is signed is byte for byte what is sent.

Credentials come from the default chain (environment, shared profile, IRSA web identity, EKS Pod
Identity, instance role), or from STS AssumeRole on ``[prometheus] role_arn`` with the chain's
credentials, refreshed by botocore before they expire.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests

from ...errors import ConfigError, SourceError

SERVICE = "aps"
ROLE_SESSION = "rightsize"
ROLE_SECONDS = 3600
_AMP_HOST = re.compile(r"aps-workspaces(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$")


def canonical_url(url: str) -> str:
    """``url`` with its query re-encoded as RFC 3986 (space as %20, '+' as %2B), pairs in their order."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote, safe="-_.~")))


class SigV4(requests.auth.AuthBase):
    """Sign requests for ``service`` in ``region`` with ``credentials`` (botocore Credentials; refreshable
    ones renew themselves in get_frozen_credentials)."""

    def __init__(self, credentials, region: str, service: str = SERVICE):
        self.credentials, self.region, self.service = credentials, region, service

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = canonical_url(r.url)
        body = r.body.encode("utf-8") if isinstance(r.body, str) else r.body
        signed = {"Content-Type": r.headers["Content-Type"]} if "Content-Type" in r.headers else {}
        aws = AWSRequest(method=r.method, url=url, data=body or b"", headers=signed)
        SigV4Auth(self.credentials.get_frozen_credentials(), self.service, self.region).add_auth(aws)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws.headers:
                r.headers[name] = aws.headers[name]
        r.url, r.body = url, body
        return r


def region_of(url: str, configured: str, session) -> str:
    """The workspace's region: ``[prometheus] region``, else the URL's host, else the AWS environment."""
    if configured:
        return configured
    m = _AMP_HOST.search(urlsplit(url).hostname or "")
    if m:
        return m.group(1)
    if session.region_name:
        return session.region_name
    raise ConfigError(f"config: prometheus.auth = \"sigv4\": no region for {url}: set [prometheus] region "
                      "(or AWS_REGION), or use the workspace URL https://aps-workspaces.REGION.amazonaws.com/workspaces/ID")


def sigv4_auth(url: str, region: str = "", role_arn: str = "", session=None) -> SigV4:
    """The auth for AMP at ``url``: credentials from ``session`` (default: a new boto3 Session, i.e. the
    default chain), or the role ``role_arn`` assumed with them. SourceError when there are none."""
    import boto3

    session = session or boto3.Session()
    region = region_of(url, region, session)
    credentials = session.get_credentials()
    if credentials is None:
        raise SourceError(f"{url}: prometheus.auth = \"sigv4\" but no AWS credentials were found (environment, "
                          "profile, IRSA web identity, EKS Pod Identity or instance role)")
    if role_arn:
        credentials = assumed_role(session, role_arn, region)
    return SigV4(credentials, region)


def assumed_role(session, role_arn: str, region: str):
    """Refreshable credentials of ``role_arn`` (STS AssumeRole in ``region`` with the session's credentials);
    botocore calls AssumeRole again shortly before they expire."""
    from botocore.credentials import RefreshableCredentials

    from ...aws_client import client_config
    from botocore.exceptions import BotoCoreError, ClientError

    sts = session.client("sts", region_name=region, config=client_config(3, connect_timeout=10, read_timeout=60))

    def fetch() -> dict:
        try:
            c = sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION, DurationSeconds=ROLE_SECONDS)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise SourceError(f"prometheus.role_arn {role_arn}: AssumeRole failed: {exc}") from None
        return {"access_key": c["AccessKeyId"], "secret_key": c["SecretAccessKey"], "token": c["SessionToken"],
                "expiry_time": c["Expiration"].isoformat()}

    return RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
