"""Amazon Managed Service for Prometheus (AMP): every request rightsize sends is SigV4-signed.

AMP itself is not reachable here, so a loopback server STANDS IN FOR AMP's front door: it checks the
signature of every request the way AWS does (the Authorization header's scope, the signed headers,
the body's hash; the query canonicalised from its decoded parameters) by recomputing it with botocore
from the test's credentials, rejects a wrong one with 403 as AMP does, and forwards a good one to a
real Prometheus (tests/promservers.py). So the collection's numbers come from a real server, and a
signature the stand-in would reject fails the test. STS for the assumed role is moto's.
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from promservers import WINDOW_HOURS, make_config, prom_dataset, prom_server  # noqa: F401
from rightsize.config import Config, load_config
from rightsize.errors import ConfigError, SourceError
from rightsize.sources.prometheus.client import Client, QueryFailed
from rightsize.sources.prometheus.sigv4 import SigV4, canonical_url, region_of, sigv4_auth
from test_prometheus_collect import assert_usage_matches, collect

REGION = "eu-west-1"
WORKSPACE = "/workspaces/ws-0123abcd-4567-89ef-0123-456789abcdef"
KEY_ID, SECRET, TOKEN = "AKIARIGHTSIZETEST", "test-secret-key/for+sigv4", "session-token-from-the-chain"
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def check_signature(method: str, raw_path: str, headers: dict, body: bytes, secrets: dict) -> str:
    """'' when the request carries a valid SigV4 signature for AMP in REGION, else AWS's reason."""
    h = {k.lower(): v for k, v in headers.items()}
    m = _AUTH.match(h.get("authorization", ""))
    if not m:
        return "missing or malformed Authorization header"
    key_id, day, region, service, signed, signature = m.groups()
    if key_id not in secrets:
        return f"the security token included in the request is invalid (unknown key {key_id})"
    secret, token = secrets[key_id]
    if (region, service) != (REGION, "aps") or not h.get("x-amz-date", "").startswith(day):
        return f"credential scope {day}/{region}/{service} does not match"
    names = signed.split(";")
    if not {"host", "x-amz-date"} <= set(names) or (token and ("x-amz-security-token" not in names or h.get("x-amz-security-token") != token)):
        return f"signed headers {signed} lack host, x-amz-date or the session token"
    path, _, query = raw_path.partition("?")
    # AWS canonicalises the query from its decoded parameters ('+' is a plus, not a space)
    params = [(unquote(k), unquote(v)) for k, _, v in (p.partition("=") for p in query.split("&") if p)]
    request = AWSRequest(method=method, url=f"http://{h['host']}{path}", data=body,
                         headers={n: h[n] for n in names if n != "host"}, params=params)
    request.context["timestamp"] = h["x-amz-date"]
    signer = SigV4Auth(Credentials(key_id, secret, token), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        return "The request signature we calculated does not match the signature you provided"
    return ""


class AmpStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.secrets = upstream, {KEY_ID: (SECRET, TOKEN)}
        self.seen: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{WORKSPACE}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _handle(self):
        srv: AmpStandIn = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        problem = check_signature(self.command, self.path, dict(self.headers), body, srv.secrets)
        path, _, query = self.path.partition("?")
        with srv.lock:
            srv.seen.append({"method": self.command, "api": path[len(WORKSPACE):], "body": body, "problem": problem,
                             "key": (_AUTH.match(self.headers.get("Authorization", "")) or [None, None])[1]})
        if problem or not path.startswith(WORKSPACE):
            return self._reply(403, json.dumps({"message": problem or "not this workspace"}).encode(), "application/json")
        answer = requests.request(self.command, f"{srv.upstream}{path[len(WORKSPACE):]}" + (f"?{query}" if query else ""),
                                  data=body or None, headers={"Content-Type": self.headers.get("Content-Type", "")}, timeout=60)
        self._reply(answer.status_code, answer.content, answer.headers.get("Content-Type", "application/json"))

    do_GET = do_POST = _handle

    def _reply(self, code: int, data: bytes, ctype: str):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def amp(prom_server):
    server = AmpStandIn(prom_server.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def chain_credentials(monkeypatch, tmp_path):
    """The default credential chain finds the test's key in the environment (and nothing else)."""
    for name, value in {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
                        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def amp_client(amp, end, session=None, **prometheus) -> Client:
    config = make_config(amp.url, end, auth="sigv4", region=REGION, **prometheus)
    return Client(config, amp.url, aws_session=session)


@pytest.mark.integration
def test_collection_through_amp_signs_instant_range_and_series_requests(amp, prom_dataset, chain_credentials):
    snap = collect(amp.url, prom_dataset.end, inventory=True, auth="sigv4", region=REGION)
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))  # the real server's numbers
    assert [s["problem"] for s in amp.seen if s["problem"]] == []
    kinds = {(s["method"], s["api"]) for s in amp.seen}
    assert {("POST", "/api/v1/query_range"), ("POST", "/api/v1/query"), ("GET", "/api/v1/series")} <= kinds
    ranges = [s for s in amp.seen if s["api"] == "/api/v1/query_range"]
    assert ranges and all(b"query=" in s["body"] and b"step=" in s["body"] for s in ranges)  # the PromQL is in the signed body
    assert {s["key"] for s in amp.seen} == {KEY_ID}


@pytest.mark.integration
def test_a_wrong_secret_is_rejected_and_named(amp, prom_dataset, chain_credentials, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(QueryFailed, match=r"HTTP 403.*signature we calculated does not match") as failure:
        amp_client(amp, prom_dataset.end).query("up", prom_dataset.end)
    assert failure.value.status == 403 and amp.seen[-1]["problem"]


@pytest.mark.integration
def test_the_signature_covers_the_post_body_and_the_query(amp, prom_dataset, chain_credentials):
    auth = sigv4_auth(amp.url, REGION)
    form = {"query": 'sum(container_memory_working_set_bytes{namespace="shop"}) + 1', "start": str(prom_dataset.end - 600),
            "end": str(prom_dataset.end), "step": "60"}
    signed = requests.Request("POST", f"{amp.url}/api/v1/query_range", data=form, auth=auth).prepare()
    assert requests.Session().send(signed).status_code == 200
    tampered = requests.Request("POST", f"{amp.url}/api/v1/query_range", data=form, auth=auth).prepare()
    tampered.body = tampered.body.replace(b"step=60", b"step=30")
    answer = requests.Session().send(tampered)
    assert answer.status_code == 403 and "does not match" in answer.json()["message"]
    # an instant query's PromQL travels in the URL: '+' and spaces must reach Prometheus as they were
    value = amp_client(amp, prom_dataset.end).query("vector(1) + 1", prom_dataset.end)
    assert float(value[0]["value"][1]) == 2.0


@pytest.mark.integration
def test_an_assumed_role_signs_with_the_role_credentials(amp, prom_dataset, chain_credentials):
    from moto import mock_aws

    role = "arn:aws:iam::123456789012:role/rightsize-amp-reader"
    asked: list[dict] = []
    with mock_aws():
        session = boto3.Session(region_name=REGION)

        def issued(parsed, **_):  # AWS knows the secret of every key it issues; the stand-in learns it here
            c = parsed["Credentials"]
            amp.secrets[c["AccessKeyId"]] = (c["SecretAccessKey"], c["SessionToken"])

        session.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: asked.append(dict(params)))
        session.events.register("after-call.sts.AssumeRole", issued)
        client = amp_client(amp, prom_dataset.end, session=session, role_arn=role)
        client.query("up", prom_dataset.end)
        series = client.query_range("container_memory_working_set_bytes", prom_dataset.end - 600, prom_dataset.end, 60, ["pod"])
        listed = client.series(["kube_pod_owner"], prom_dataset.end - 600, prom_dataset.end)
    assert series and listed
    assert [(a["RoleArn"], a["RoleSessionName"]) for a in asked] == [(role, "rightsize")]
    keys = {s["key"] for s in amp.seen}
    assert len(keys) == 1 and KEY_ID not in keys and keys <= set(amp.secrets)  # signed as the role, not the chain
    assert [s["problem"] for s in amp.seen] == ["", "", ""]


def test_query_strings_are_sent_as_sigv4_canonicalises_them():
    assert canonical_url("https://h/w/api/v1/query?query=a+%2B+b&time=1") == "https://h/w/api/v1/query?query=a%20%2B%20b&time=1"
    assert canonical_url("https://h/w/api/v1/series?match%5B%5D=up") == "https://h/w/api/v1/series?match%5B%5D=up"


def test_the_region_comes_from_the_config_the_workspace_url_or_the_environment():
    url = "https://aps-workspaces.ap-southeast-2.amazonaws.com/workspaces/ws-1"
    assert region_of(url, "", boto3.Session(region_name="us-east-1")) == "ap-southeast-2"
    assert region_of(url, "eu-central-1", boto3.Session()) == "eu-central-1"
    assert region_of("https://proxy.internal/ws", "", boto3.Session(region_name="us-west-2")) == "us-west-2"
    no_region = type("Session", (), {"region_name": None})()  # a session of a machine without AWS_REGION or profile
    with pytest.raises(ConfigError, match="set \\[prometheus\\] region"):
        region_of("https://proxy.internal/ws", "", no_region)


def test_no_credentials_is_an_error_naming_the_chain(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(SourceError, match="no AWS credentials were found.*IRSA web identity, EKS Pod Identity"):
        sigv4_auth("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1")


def test_sigv4_replaces_the_bearer_token(monkeypatch, chain_credentials):
    monkeypatch.setenv("RIGHTSIZE_PROMETHEUS_TOKEN", "a-bearer-token")
    c = Config()
    config = dataclasses.replace(c, prometheus=dataclasses.replace(c.prometheus, auth="sigv4", region=REGION))
    client = Client(config, "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1")
    assert isinstance(client.auth, SigV4) and "Authorization" not in client.headers


@pytest.mark.parametrize("text, message", [
    ('[prometheus]\nrole_arn = "arn:aws:iam::123456789012:role/r"\n', r"prometheus.role_arn: is only used with auth = \"sigv4\""),
    ('[prometheus]\nauth = "sigv4"\nrole_arn = "my-role"\n', r"prometheus.role_arn: 'my-role' is not an IAM role ARN"),
    ('[prometheus]\nauth = "sigv4"\nregion = "Ireland"\n', r"prometheus.region: 'Ireland' is not an AWS region"),
    ('[prometheus]\nauth = "sigv4"\nusername = "u"\n', r"prometheus.username: auth = \"sigv4\" signs every request"),
    ('[prometheus]\nauth = "oauth"\n', r"prometheus.auth: expected one of 'none', 'sigv4'"),
])
def test_bad_amp_settings_are_refused_at_load(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.integration
def test_the_weekly_job_reads_amp_and_writes_its_week_to_s3(amp, prom_dataset, chain_credentials, tmp_path):
    """deploy/cronjob.yaml's flow: `rightsize run` signs for AMP and commits snapshot, report and patches to S3."""
    import datetime as dt

    from moto import mock_aws

    from rightsize.cli import main
    from rightsize.emit.report import week_label

    end = make_config(amp.url, prom_dataset.end).prometheus.end
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[general]
cluster_name = "prod-eu"
window = "24h"
step = "1m"
[prometheus]
url = "{amp.url}"
auth = "sigv4"
region = "{REGION}"
end = "{end}"
retries = 0
[kubernetes]
source = "prometheus"
[policies.production]
min_history = "12h"
[pricing]
source = "offline"
[report]
output_dir = "s3://acme-rightsize/rightsize"
layout = "{{week}}/{{cluster}}"
charts = false
""")
    with mock_aws():  # moto puts its own fake key into the environment: the chain now finds that one
        amp.secrets[os.environ["AWS_ACCESS_KEY_ID"]] = (os.environ["AWS_SECRET_ACCESS_KEY"], os.environ.get("AWS_SESSION_TOKEN"))
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="acme-rightsize", CreateBucketConfiguration={"LocationConstraint": REGION})
        assert main(["run", "--quiet", "--config", str(cfg)]) == 0
        week = f"rightsize/{week_label(dt.datetime.now(dt.timezone.utc))}/prod-eu"
        manifests = {k: json.loads(s3.get_object(Bucket="acme-rightsize", Key=f"{week}/{k}_SUCCESS")["Body"].read())
                     for k in ("", "snapshot/", "patches/")}
    assert {"report.md", "summary.json", "recommendations.csv"} <= set(manifests[""]["files"])
    assert {"meta.json", "usage.parquet"} <= set(manifests["snapshot/"]["files"])
    assert "PATCHES.md" in manifests["patches/"]["files"]
    assert amp.seen and not [s for s in amp.seen if s["problem"]]
