"""The command line's arguments: every command with its options and their help (``rightsize COMMAND --help``).
cli.py runs them."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EXIT_USAGE
from .version import __version__


EPILOG = """exit codes: 0 ok, 1 error, 2 bad usage or config, 3 a CI threshold in [thresholds] was crossed,
4 partial result (a cluster or namespace shard could not be collected).
Every config key is listed by `rightsize config --keys`."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is 2 as well; keep its usage line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"rightsize: error: {message}\n")


def _add_collect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifests", metavar="PATH", default="",
                   help="read workload specs from a folder / YAML file (kubectl kustomize or helm template output) instead of the API")
    p.add_argument("--context", metavar="NAME", default="", help="kubeconfig context to read workloads from")
    p.add_argument("--allow-partial", action="store_true",
                   help="go on when a namespace shard still fails after retries; the report lists what is missing (exit 4)")
    p.add_argument("--prices", choices=("auto", "aws", "offline"), help="override [pricing] source")
    p.add_argument("--series", metavar="[CLUSTER/]NAMESPACE/KIND/NAME", action="append", default=[],
                   help="also fetch this workload's usage time series ([general] step) for drill-down in a notebook; repeatable")


def _add_overlay_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overlay", metavar="DIR", type=Path, help="existing kustomize overlay to add the patches to (prints the render diff)")
    p.add_argument("--cluster", metavar="NAME", help="with --overlay and several clusters: whose recommendations go into the overlay")


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of days, at least 1")
    return days


def _location(text: str):
    """--out / --snapshot / --compare: a local folder, or an s3://bucket/prefix (storage.location)."""
    from .storage import S3Error, location

    try:
        return location(text)
    except S3Error as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_snapshot_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", metavar="DIR|s3://...", type=_location,
                   help="snapshot folder written by collect, or a folder (S3 prefix) of cluster snapshots to merge into one "
                        "fleet report (default: <this week's report folder>/snapshot)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rightsize", description="Right-size Kubernetes containers and find AWS savings; emits reports and kustomize patches for review.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rightsize {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default="config.toml",
                        help="config file (default ./config.toml; missing file = all defaults)")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common.add_argument("--quiet", action="store_true", help="no progress lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_data_commands(sub, common)
    _add_output_commands(sub, common)
    return parser


def _add_data_commands(sub, common: argparse.ArgumentParser) -> None:
    """collect, doctor, analyze, backtest."""
    p = sub.add_parser("collect", parents=[common], help="pull usage (Prometheus), specs (Kubernetes API or manifests) and prices (AWS) into a snapshot",
                       description="Collect a snapshot: usage from the Prometheus-compatible API, workload specs from the Kubernetes API or manifests, and prices from AWS or the bundled catalogue.")
    _add_collect_options(p)
    p.add_argument("--out", metavar="DIR|s3://...", type=_location, help="snapshot folder to write (default: <this week's report folder>/snapshot)")

    sub.add_parser("doctor", parents=[common], help="check what a collection would find: coverage, retention, metric families",
                   description="Before a collection: per cluster, the server, how much of the window it really has data for "
                               "(coverage) and its retention, the nodes' labels, and every metric family rightsize reads, "
                               "present or missing with what it disables and a hint. Reads no usage sample. Exit 1 when a "
                               "collection could not run (a core metric missing, the server unreachable).")

    p = sub.add_parser("analyze", parents=[common], help="compute recommendations, costs, spot and cross-AZ findings; write the data tables",
                       description="Analyze a snapshot and write recommendations.csv, spot.csv, cross_az.csv, load_balancers.csv, idle.csv, node_groups.csv and summary.json.")
    _add_snapshot_option(p)
    p.add_argument("--out", metavar="DIR|s3://...", type=_location, help="output folder (default: the snapshot's parent folder)")
    p.add_argument("--explain", metavar="[CLUSTER/]NAMESPACE/KIND/NAME[:CONTAINER]",
                   help="print the full reasoning for one workload (or one of its containers) and stop")

    p = sub.add_parser("backtest", parents=[common], help="recommend without the last days, replay them: slack, OOMs, throttling",
                       description="Recommend from the snapshot's window minus its last --days days and replay those days against "
                                   "the recommendation (and against today's requests): CPU and memory slack, predicted OOM kills, "
                                   "containers above their request. Prints a table per namespace and writes backtest.csv.")
    _add_snapshot_option(p)
    p.add_argument("--days", type=_days, default=7, help="days at the end of the window to replay (default 7)")
    p.add_argument("--policy", metavar="NAME|KEY=VALUE,...", action="append", default=[],
                   help="compare a declared policy (production, non_production, ...) or a what-if of overrides "
                        "(e.g. cpu_request_percentile=p99,margin=0.25) with the config's policies; repeatable")
    p.add_argument("--sweep", action="store_true",
                   help="instead: the margin frontier per policy, resource and usage pattern (slack against predicted OOM "
                        "kills and steps over request at each candidate margin, the smallest safe one marked); writes margins.csv")
    p.add_argument("--out", metavar="DIR|s3://...", type=_location, help="folder for backtest.csv (default: the snapshot's parent folder)")


def _add_output_commands(sub, common: argparse.ArgumentParser) -> None:
    """report, patch, run, demo, config."""
    p = sub.add_parser("report", parents=[common], help="write report.md, report.html and the data tables",
                       description="Analyze a snapshot and write the weekly report: report.md (CI summary), report.html (self-contained), CSV/JSON tables. "
                                   "Given a folder (or S3 prefix) of several clusters' snapshots, merge them into one fleet report.")
    _add_snapshot_option(p)
    p.add_argument("--fleet", action="store_true",
                   help="merge this week's cluster snapshots: --snapshot <[report] output_dir>/<ISO year-week>/ "
                        "(with [report] layout = \"{week}/{cluster}\")")
    p.add_argument("--out", metavar="DIR|s3://...", type=_location,
                   help="report folder (default: <[report] output_dir>/<[report] layout>, e.g. reports/<ISO year-week>/; "
                        "for a fleet: <the fleet folder>/_fleet)")
    p.add_argument("--compare", metavar="DIR|s3://...", type=_location,
                   help="previous report folder for week-over-week deltas (default: the same folder of the latest earlier week, if present)")

    p = sub.add_parser("patch", parents=[common], help="write kustomize patches for review (never applies anything)",
                       description="Write one strategic-merge patch per workload with a kustomization.yaml and PATCHES.md, or add them to an existing overlay with --overlay.")
    _add_snapshot_option(p)
    p.add_argument("--out", metavar="DIR|s3://...", type=_location, help="patch folder (default: <report folder>/patches)")
    _add_overlay_options(p)

    p = sub.add_parser("run", parents=[common], help="collect, report and patch in one go (the weekly job)",
                       description="The weekly job: collect a snapshot, write the report and the patches into reports/<ISO year-week>/.")
    _add_collect_options(p)
    p.add_argument("--out", metavar="DIR|s3://...", type=_location,
                   help="report folder (default: <[report] output_dir>/<[report] layout>, e.g. reports/<ISO year-week>/)")
    p.add_argument("--compare", metavar="DIR|s3://...", type=_location, help="previous report folder for week-over-week deltas")
    _add_overlay_options(p)

    p = sub.add_parser("demo", parents=[common], help="run every stage on the bundled demo cluster (no cluster, no AWS, no network)",
                       description="Generate the deterministic demo snapshot, price it with the offline catalogue, and write the report and patches.")
    p.add_argument("--out", metavar="DIR", type=Path, default=Path("reports/demo"), help="output folder (default reports/demo)")

    p = sub.add_parser("config", parents=[common], help="print the documented default config.toml (or every key with --keys)",
                       description="Print the documented config.toml with every key at its default, or a table of keys.")
    p.add_argument("--keys", action="store_true", help="list every key, its default, type/unit and meaning")
    p.add_argument("--check", action="store_true", help="validate --config and print nothing on success")
