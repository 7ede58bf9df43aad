"""The week's summary posted to a chat webhook: Slack, Microsoft Teams, or generic JSON (``[notify]``).

The message says the money (savings, today's cost, idle nodes), the OOM risks, the top changes and
where the report is. The webhook's URL is a secret: it is read from the environment variable that
``[notify] url_env`` names and never printed. Posting happens after the report is written, with
urllib3's retries (connection errors, 429 and 5xx, Retry-After honoured); a post that still fails
raises NotifyError (exit 1) naming the variable and the answer, and the report stays as written.

Names from the cluster are data: Slack gets them in plain_text objects (never parsed as mrkdwn),
Teams with Markdown's special characters escaped, generic JSON as strings.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import pandas as pd

from ..errors import ConfigError, RightsizeError
from .. import formatting as fmt

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RETRY_STATUS = (429, 500, 502, 503, 504)


class NotifyError(RightsizeError):
    """The webhook did not take the message (exit 1); the report was written before."""


@dataclass(frozen=True)
class Message:
    """What the notification says, before any chat format: plain text lines, names unescaped."""

    title: str
    money: list[tuple[str, str]]          # (label, formatted USD/month)
    oom_risks: list[str]                  # 'ns/Kind/name container (N OOM kills)'
    oom_risk_count: int
    changes: list[str]                    # 'ns/Kind/name container: cpu 1 → 250m, memory ... (saves $x/month)'
    change_count: int
    link: str
    figures: dict                         # the same as numbers (USD/month, counts), for generic JSON


def webhook_url(config) -> str:
    """The URL from the environment ('' when ``[notify] url_env`` is empty); ConfigError (exit 2) when the
    variable it names is not set, so a run fails before it collects anything."""
    name = config.notify.url_env
    if not name:
        return ""
    if not ENV_NAME.fullmatch(name):
        raise ConfigError(f"notify.url_env: {name!r} is not an environment variable name")
    url = os.environ.get(name, "").strip()
    if not url:
        raise ConfigError(f"notify.url_env: the environment variable {name} holds no webhook URL "
                          f"(set it, or set [notify] url_env = \"\" to send no notification)")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"notify.url_env: {name} does not hold an http(s) URL")
    return url


def report_link(config, out, week: str, cluster: str) -> str:
    """``[notify] report_url`` filled in, else the report.html path of the folder written."""
    if config.notify.report_url:
        return config.notify.report_url.format(week=week, cluster=cluster)
    return f"{out}/report.html"


def _where(r) -> str:
    return f"{r['namespace']}/{r['kind']}/{r['workload']} {r['container']}"


def build_message(summary: dict, recommendations: pd.DataFrame, title: str, link: str, top_n: int) -> Message:
    """The message of one report (pure): money from summary.json's totals, lists from the recommendations."""
    from ..analysis.selection import risky, top_savings

    t = summary.get("totals") or {}
    money = [("Savings available", fmt.usd(t.get("savings_usd_per_month"))),
             ("Current cost of requests", fmt.usd(t.get("usd_per_month_current"))),
             ("Idle node capacity", fmt.usd(t.get("idle_usd_per_month"))),
             ("Bankable (nodes removed)", fmt.usd(t.get("bankable_savings_usd_per_month")))]
    risks = risky(recommendations)
    risks = risks[risks["_oom"]] if len(risks) else risks
    oom = [f"{_where(r)} ({fmt.count(r['oom_kills'])} OOM kills)" for r in risks.head(top_n).to_dict("records")]
    top = top_savings(recommendations, top_n)
    changes = [f"{_where(r)}: CPU {fmt.cpu(r['cpu_request_cores_current'])} → {fmt.cpu(r['cpu_request_cores_recommended'])}, "
               f"memory {fmt.memory(r['memory_request_bytes_current'])} → {fmt.memory(r['memory_request_bytes_recommended'])} "
               f"(saves {fmt.usd(r['_savings'])}/month)" for r in top.to_dict("records")]
    counts = summary.get("containers_by_status") or {}
    figures = {k: t.get(k) for k in ("savings_usd_per_month", "usd_per_month_current", "idle_usd_per_month",
                                      "bankable_savings_usd_per_month")}
    figures.update(oom_risk=len(risks), changes=int(counts.get("change", 0)))
    return Message(title=title, money=money, oom_risks=oom, oom_risk_count=len(risks), changes=changes,
                   change_count=int(counts.get("change", 0)), link=link, figures=figures)


def _slack(m: Message) -> dict:
    def plain(text: str) -> dict:
        return {"type": "section", "text": {"type": "plain_text", "text": text[:3000], "emoji": False}}

    blocks = [{"type": "header", "text": {"type": "plain_text", "text": m.title[:150]}},
              {"type": "section", "fields": [{"type": "plain_text", "text": f"{label}: {value}"} for label, value in m.money]},
              plain(f"OOM risks: {m.oom_risk_count}" + "".join(f"\n• {line}" for line in m.oom_risks)),
              plain(f"Proposed changes: {m.change_count}; largest savings:" + "".join(f"\n• {line}" for line in m.changes)
                    if m.changes else f"Proposed changes: {m.change_count}"),
              plain(f"Report: {m.link}")]
    return {"text": f"{m.title}: savings {m.money[0][1]}/month, {m.oom_risk_count} OOM risks", "blocks": blocks}


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")


def markdown_text(text: str) -> str:
    """Markdown's special characters escaped with a backslash (Teams renders TextBlocks as Markdown)."""
    return _MARKDOWN.sub(r"\\\1", text)


def _teams(m: Message) -> dict:
    def block(text: str, **extra) -> dict:
        return {"type": "TextBlock", "text": markdown_text(text), "wrap": True, **extra}

    body = [block(m.title, size="Large", weight="Bolder"),
            {"type": "FactSet", "facts": [{"title": label, "value": markdown_text(value)} for label, value in m.money]},
            block(f"OOM risks: {m.oom_risk_count}", weight="Bolder"), *[block(f"• {line}") for line in m.oom_risks],
            block(f"Proposed changes: {m.change_count}", weight="Bolder"), *[block(f"• {line}") for line in m.changes],
            block(f"Report: {m.link}")]
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
            "body": body}
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def _generic(m: Message) -> dict:
    return {"title": m.title, "figures": m.figures, "oom_risks": m.oom_risks, "top_changes": m.changes, "report": m.link}


FORMATS = {"slack": _slack, "teams": _teams, "generic": _generic}


def payload(message: Message, kind: str) -> dict:
    """The JSON body for the webhook ``kind`` (slack, teams, generic)."""
    return FORMATS[kind](message)


def post(url: str, body: dict, config) -> None:
    """POST ``body`` as JSON with retries; NotifyError naming the variable (never the URL) when it fails."""
    import urllib3

    n = config.notify
    retry = urllib3.Retry(total=n.retries, backoff_factor=n.backoff, status_forcelist=RETRY_STATUS, allowed_methods=None,
                          respect_retry_after_header=True, raise_on_status=False)
    http = urllib3.PoolManager(retries=retry, timeout=urllib3.Timeout(total=n.timeout))
    where = f"notify: the {n.format} webhook in ${n.url_env}"
    try:
        response = http.request("POST", url, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    except urllib3.exceptions.MaxRetryError as exc:
        raise NotifyError(f"{where} could not be reached after {n.retries + 1} attempts: {type(exc.reason).__name__}") from None
    except urllib3.exceptions.HTTPError as exc:
        raise NotifyError(f"{where} failed: {type(exc).__name__}") from None
    if not 200 <= response.status < 300:
        text = response.data[:200].decode("utf-8", "replace").strip()
        raise NotifyError(f"{where} answered HTTP {response.status}"
                          f"{f' after {n.retries + 1} attempts' if response.status in RETRY_STATUS else ''}: {text!r}")


def notify(config, url: str, result, recommendations: pd.DataFrame, week: str, cluster: str) -> Message:
    """Post the summary of a written report (``result``: emit.report.ReportResult); returns the message sent."""
    title = result.view.title if result.view is not None else f"rightsize report {week}"
    message = build_message(result.summary, recommendations, title, report_link(config, result.out_dir, week, cluster),
                            config.notify.top_n)
    post(url, payload(message, config.notify.format), config)
    return message
