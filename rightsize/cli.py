"""The command line: collect, doctor, analyze, report, patch, run (all stages), demo, config.

Exit codes: 0 ok; 1 error; 2 bad usage or config; 3 a CI threshold was crossed; 4 partial result
(a cluster or shard failed and --allow-partial / several clusters let the run go on).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import signal
import sys
import warnings
from pathlib import Path

from . import memory
from .arguments import build_parser
from .config import Config, check_files, help_for_keys, load_config, render_config
from .errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_THRESHOLD, ConfigError, RightsizeError
from .escape import clean_text
from .snapshot import Snapshot


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so temporary folders are removed and earlier outputs stay."""


def _on_sigterm(signum, _frame):
    raise Terminated()


def _locked(config: Config, folder: Path, command: str, log):
    """Hold the lock of one output folder for a command (see storage.output_lock)."""
    from .storage import output_lock

    return output_lock(folder, wait_seconds=config.general.lock_wait, command=command, log=log,
                       lease_seconds=config.general.lock_lease)


def say(text: str) -> None:
    """One line on stderr, "rightsize: TEXT", with control characters escaped (escape.clean_text): a name in
    a message can neither forge a line nor drive the terminal."""
    print(f"rightsize: {clean_text(text)}", file=sys.stderr)


class TerminalLog:
    """Log lines through rich, plus a progress bar while queries run (``bar(done, total)``)."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._progress = None
        self._task = None

    def __call__(self, msg: str) -> None:
        from rich.text import Text

        # printed above the live bar while one is shown; print, not console.log, which ends every
        # line with the source position of this call ('cli.py:42')
        stamp = f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S} "
        self.console.print(Text.assemble((stamp, "dim"), clean_text(msg)), highlight=False)

    def bar(self, done: int, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if self._progress is None:
            self._progress = Progress(TextColumn("queries"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("queries", total=total)
        self._progress.update(self._task, completed=done, total=total)
        if done >= total:
            self._progress.stop()
            self._progress = None


def _log_function(quiet: bool):
    """rich lines and a progress bar on a terminal, plain timestamped lines in CI and pipes."""
    if quiet:
        return lambda msg: None
    if sys.stderr.isatty() and not os.environ.get("CI"):
        return TerminalLog()
    return lambda msg: print(f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S} {clean_text(msg)}", file=sys.stderr, flush=True)


def _with_prices(config: Config, prices: str | None) -> Config:
    if not prices:
        return config
    return dataclasses.replace(config, pricing=dataclasses.replace(config.pricing, source=prices))


def _report_dir(config: Config, out: Path | None) -> Path:
    if out:
        return out
    from .emit.report import default_report_dir

    return default_report_dir(config)


def _load_snapshot(config: Config, path: Path | None, log=lambda _m: None, per_pod_tables: bool = False,
                   when_used: bool = False) -> Snapshot:
    """The snapshot at ``path``, or the fleet of cluster snapshots below it merged into one (fleet.py); ``when_used``:
    every table read when first used (report and patch: with the analysis `analyze` saved they read few of them)."""
    from .fleet import load_input

    return load_input(path or _report_dir(config, None) / "snapshot", config, per_pod_tables=per_pod_tables, log=log,
                      when_used=when_used)


def _beside_snapshot(args, snapshot: Snapshot, config: Config):
    """Default output of analyze and backtest: --out, else the snapshot's folder (_snapshot_home)."""
    return args.out or _snapshot_home(args.snapshot, snapshot, config)


def _snapshot_home(path: Path | None, snapshot: Snapshot, config: Config) -> Path:
    """The snapshot's parent folder, or the run folder given as --snapshot ``path`` (a fleet's: <fleet>/_fleet)."""
    from .fleet import is_snapshot
    if snapshot.meta.get("fleet"):
        return _fleet_out(snapshot)
    if not path:
        return _report_dir(config, None)
    return path.parent if is_snapshot(path) else path


def _this_weeks_fleet(config: Config, now: dt.datetime | None = None):
    """<[report] output_dir>/<the week part of [report] layout>: where this week's cluster folders are."""
    from .emit.report import week_label
    from .storage import location

    layout = config.report.layout
    if "{week}" not in layout or ("{cluster}" in layout and layout.index("{cluster}") < layout.index("{week}")):
        raise ConfigError(f"--fleet needs [report] layout with {{week}} before {{cluster}}, e.g. \"{{week}}/{{cluster}}\" "
                          f"(got {layout!r}); or name the folder with --snapshot")
    week = layout[:layout.index("{week}") + len("{week}")].format(week=week_label(now or dt.datetime.now(dt.timezone.utc)))
    return location(config.report.output_dir, expand_user=True) / week


def _fleet_out(snapshot: Snapshot):
    from .fleet import FLEET_REPORT
    from .storage import location

    return location(snapshot.meta["fleet"]["root"]) / FLEET_REPORT


def _finish(report_result, partial: bool, log) -> int:
    crossed = list(getattr(report_result, "thresholds_crossed", []) or [])
    for message in crossed:
        say(f"threshold crossed: {message}")
    if crossed:
        return EXIT_THRESHOLD
    if partial:
        log("result is partial: see the report's data caveats")
        return EXIT_PARTIAL
    return EXIT_OK


def _is_partial(snapshot: Snapshot) -> bool:
    return any(snapshot.meta.get("partial", {}).values())


def _write_report(snapshot, analysis, config, out: Path, compare: Path | None, log, csv_copies=None):
    from .emit.report import write_report

    result = write_report(snapshot, analysis, config, out, compare_dir=compare, progress=log, csv_copies=csv_copies)
    log(f"report written to {out / 'report.md'} and {out / 'report.html'}")
    return result


def _overlay_lock(config: Config, overlay: Path, log):
    """The lock of an overlay, kept in a state folder (the temporary directory) rather than beside the
    overlay: nothing appears in the GitOps repository, and the file is removed on exit."""
    import hashlib
    import tempfile

    from .storage import output_lock

    key = hashlib.sha256(str(Path(overlay).resolve()).encode()).hexdigest()[:16]
    state = Path(tempfile.gettempdir()) / "rightsize-locks" / f"overlay-{key}.lock"
    return output_lock(overlay, wait_seconds=config.general.lock_wait, command="rightsize patch --overlay", log=log,
                       lease_seconds=config.general.lock_lease, lock_file=state)


def _write_patches(analysis, snapshot, config, out: Path, overlay: Path | None, log, cluster: str | None = None):
    if overlay:
        from .emit.overlay import DIFF_FILE, apply_to_overlay
        from .storage import write_file

        with _overlay_lock(config, overlay, log):
            result = apply_to_overlay(analysis.recommendations, snapshot, config, overlay, cluster=cluster)
        print(result.diff or "(the rendered overlay does not change)")
        write_file(out, "PATCHES.md", result.markdown, "PATCHES.md")
        if result.diff:
            write_file(out, DIFF_FILE, result.diff, "overlay diff")
        state = f"updated ({len(result.written)} files written, {len(result.removed)} removed)" if result.written \
            else f"unchanged ({result.unchanged})"
        log(f"overlay {overlay} {state}; pull-request text in {out / 'PATCHES.md'}")
        return result
    from .emit.patches import write_patches

    result = write_patches(analysis.recommendations, snapshot, config, out)
    log(f"patches written to {out}")
    for warning in result.warnings:
        say(f"warning: {warning}")
    return result


def _notify(url: str, config: Config, snapshot, analysis, result, log) -> None:
    """Post the week's summary to the webhook (``[notify]``) once everything is written; a failure is
    an error (exit 1) that says the report is there all the same."""
    if not url:
        return
    from .emit.notify import NotifyError, notify
    from .emit.report import snapshot_week

    clusters = ",".join(str(c) for c in snapshot.meta.get("clusters") or []) or config.general.cluster_name
    try:
        notify(config, url, result, analysis.recommendations, snapshot_week(snapshot.meta), clusters)
    except NotifyError as exc:
        raise NotifyError(f"{exc}; the report was written to {result.out_dir}") from None
    log(f"summary posted to the {config.notify.format} webhook in ${config.notify.url_env}")


def _summary(analysis, snapshot, config: Config, result=None) -> None:
    from .emit.terminal import print_summary

    print_summary(analysis, snapshot, result=result, config=config)


def cmd_collect(args, config, log) -> int:
    from .collect import collect

    check_files(config, args.config)
    out = args.out or _report_dir(config, None) / "snapshot"
    with _locked(config, out, "rightsize collect", log):
        snapshot = collect(config, manifests=args.manifests, context=args.context, allow_partial=args.allow_partial,
                           series=tuple(args.series), log=log)
        snapshot.write(out)
    log(f"snapshot written to {out}")
    return EXIT_PARTIAL if _is_partial(snapshot) else EXIT_OK


def cmd_doctor(args, config, log) -> int:
    from .doctor import examine, report

    text, code = report(examine(config, log), config)
    print(text)
    return code


def cmd_analyze(args, config, log) -> int:
    from .api import analyze

    snapshot = _load_snapshot(config, args.snapshot, log)
    if args.explain:
        from .analysis.explain import explain

        print(explain(snapshot, config, args.explain))
        return EXIT_OK
    from .emit.saved import CsvsAhead, analysis_key, write_analysis
    from .storage import replace_folder

    key = analysis_key(snapshot, config)  # of the snapshot as read, as report and patch will see it
    analysis = analyze(snapshot, config, while_backtest=(ahead := CsvsAhead()))  # CSVs rendered while the backtest runs
    out = _beside_snapshot(args, snapshot, config)
    with _locked(config, out, "rightsize analyze", log):  # all tables (and the analysis for report, patch) land together
        replace_folder(out, lambda tmp: write_analysis(analysis, snapshot, config, key, tmp, ahead.texts), what="tables", keep_others=True)
    log(f"tables written to {out}")
    _summary(analysis, snapshot, config)
    return EXIT_PARTIAL if _is_partial(snapshot) else EXIT_OK


def cmd_backtest(args, config, log) -> int:
    from . import api
    from .emit.tables import table_csv
    from .emit.terminal import backtest_text, frontier_text
    from .schema import BACKTEST_COLUMNS, MARGIN_COLUMNS
    from .storage import write_file

    snapshot = _load_snapshot(config, args.snapshot, log, per_pod_tables=True)
    sweep = (api.margin_sweep(snapshot, config, test_days=args.days), "margins.csv", MARGIN_COLUMNS) if args.sweep else None
    table, name, columns = sweep or (api.backtest(snapshot, {p: _policy_arg(p) for p in args.policy}, config, test_days=args.days), "backtest.csv", BACKTEST_COLUMNS)
    out = _beside_snapshot(args, snapshot, config)
    with _locked(config, out, "rightsize backtest", log):
        path = write_file(out, name, table_csv(table, columns), "backtest")
    print(frontier_text(table) if args.sweep else backtest_text(table, args.days))
    log(f"{name} written to {path}")
    return EXIT_PARTIAL if _is_partial(snapshot) else EXIT_OK


def _policy_arg(text: str):
    """--policy: a declared policy name, or KEY=VALUE pairs separated by commas (a what-if)."""
    if "=" not in text:
        return text
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if any(len(p) != 2 or not p[0].strip() for p in pairs):
        raise ConfigError(f"--policy {text!r}: expected a policy name or KEY=VALUE,KEY=VALUE")
    return {k.strip(): _toml_scalar(v.strip()) for k, v in pairs}


def _toml_scalar(text: str):
    """A --policy value as TOML would read it (0.25, true, "p99" without quotes)."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _analysis(args, snapshot, config, log, *, backtest: bool = True):
    """The analysis ``rightsize analyze`` saved for this snapshot and config (emit/saved.py), looked for where analyze
    writes by default (beside the snapshot) and in --out, with the CSVs beside it (saved_csvs); else computed now."""
    from .api import analyze
    from .emit.saved import analysis_key, find_saved

    key = analysis_key(snapshot, config)
    folders = [_snapshot_home(args.snapshot, snapshot, config)] + ([args.out] if args.out else [])
    analysis, csvs = find_saved(folders, key, log, warn=lambda text: say(f"warning: {text}"))
    return (analysis, csvs) if analysis is not None else (analyze(snapshot, config, backtest=backtest), {})


def cmd_report(args, config, log) -> int:
    if args.fleet:
        if args.snapshot:
            raise ConfigError("--fleet reads this week's folder of [report] output_dir: give it or --snapshot, not both")
        args.snapshot = _this_weeks_fleet(config)
    from .emit.notify import webhook_url

    url = webhook_url(config)
    snapshot = _load_snapshot(config, args.snapshot, log, when_used=True)
    analysis, csvs = _analysis(args, snapshot, config, log)
    out = args.out or (_fleet_out(snapshot) if snapshot.meta.get("fleet") else _report_dir(config, None))
    with _locked(config, out, "rightsize report", log):
        result = _write_report(snapshot, analysis, config, out, args.compare, log, csvs)
    _summary(analysis, snapshot, config, result)
    _notify(url, config, snapshot, analysis, result, log)
    return _finish(result, _is_partial(snapshot), log)


def cmd_patch(args, config, log) -> int:
    snapshot = _load_snapshot(config, args.snapshot, log, when_used=True)
    analysis, _ = _analysis(args, snapshot, config, log, backtest=False)  # patches read the recommendations only
    # by default beside the snapshot, in its week's report folder (never a new folder of today's week)
    out = args.out or _beside_snapshot(args, snapshot, config) / "patches"
    with _locked(config, out, "rightsize patch", log):
        _write_patches(analysis, snapshot, config, out, args.overlay, log, args.cluster)
    return EXIT_PARTIAL if _is_partial(snapshot) else EXIT_OK


def cmd_run(args, config, log) -> int:
    from .api import analyze
    from .collect import collect

    from .emit.notify import webhook_url

    check_files(config, args.config)
    url = webhook_url(config)
    out = _report_dir(config, args.out)
    with _locked(config, out, "rightsize run", log):  # one run's snapshot, report and patches, never a mix
        snapshot = collect(config, manifests=args.manifests, context=args.context, allow_partial=args.allow_partial,
                           series=tuple(args.series), log=log)
        analysis = analyze(snapshot, config)
        result = _write_run(snapshot, analysis, config, out, args, log)
    _summary(analysis, snapshot, config, result)
    _notify(url, config, snapshot, analysis, result, log)
    return _finish(result, _is_partial(snapshot), log)


def _write_run(snapshot, analysis, config, out, args, log):
    """The run folder as one unit: snapshot/, the report and patches/ staged together and swapped in by
    one replace (a signal or a kill leaves either all of them new or none). On S3 each part is committed
    by its own pointer switch, signals held between them. ``--overlay`` (outside the folder) comes after."""
    from .storage import replace_folder, store

    if not store(out).swaps_nested:  # each part committed on its own (an S3 prefix per part)
        snapshot.write(out / "snapshot")
        result = _write_report(snapshot, analysis, config, out, args.compare, log)
        if not args.overlay:
            _write_patches(analysis, snapshot, config, out / "patches", None, log, args.cluster)
    else:
        from .emit.report import write_report

        def fill(tmp):
            snapshot.write(tmp / "snapshot")
            box["report"] = write_report(snapshot, analysis, config, out, args.compare, progress=log, into=tmp)
            if not args.overlay:  # with --overlay the patches go into the overlay, after the swap
                box["patches"] = _patches_into(analysis, snapshot, config, tmp / "patches", out / "patches", args.cluster)

        box: dict = {}
        replace_folder(out, fill, what="run outputs", keep_others=True)
        result = box["report"]
        log(f"snapshot, report and patches written to {out} (report.md, report.html, patches/)")
        for warning in box["patches"].warnings if "patches" in box else []:
            say(f"warning: {warning}")
    if args.overlay:
        _write_patches(analysis, snapshot, config, out / "patches", args.overlay, log, args.cluster)
    return result


def _patches_into(analysis, snapshot, config, staged, out, cluster):
    """write_patches into the staged run folder, its messages naming the real folder."""
    from .emit.patches import _check_writable, write_patches

    _check_writable(out)
    result = write_patches(analysis.recommendations, snapshot, config, staged)
    result.warnings = [w.replace(str(staged), str(out)) for w in result.warnings]
    return result


def cmd_demo(args, config, log) -> int:
    from .api import analyze
    from .demo import generate
    from .sources.aws import collect_prices

    out: Path = args.out
    with _locked(config, out, "rightsize demo", log):
        log("generating the demo cluster (deterministic, no network)")
        snapshot = generate()
        collect_prices(config, snapshot, offline=True)
        snapshot.write(out / "snapshot")
        analysis = analyze(snapshot, config)
        result = _write_report(snapshot, analysis, config, out, None, log)
        config = _with_demo_base(config, out, log)
        _write_patches(analysis, snapshot, config, out / "patches", None, log)
    _summary(analysis, snapshot, config, result)
    return _finish(result, False, log)


def _with_demo_base(config: Config, out: Path, log) -> Config:
    """Write the demo's base manifests to <out>/base and point the patch folders at them (unless the
    config already names resources), so `kubectl kustomize <out>/patches/demo/<namespace>` renders."""
    from . import demo_manifests

    demo_manifests.write_base(out / "base")
    log(f"demo base manifests written to {out / 'base'}")
    if config.patches.resources:
        return config
    resources = demo_manifests.patch_resources(config.patches.layout)
    return dataclasses.replace(config, patches=dataclasses.replace(config.patches, resources=resources))


def cmd_config(args, config, log) -> int:
    if args.check:  # every check a run makes that needs no network (load_config made the others)
        check_files(config, args.config)
        return EXIT_OK
    if args.keys:
        for key, default, expected, text in help_for_keys():
            print(f"{key} = {default}\n    {text} ({expected})")
        return EXIT_OK
    sys.stdout.write(render_config(config))
    return EXIT_OK


def _load_config(path) -> Config:
    """load_config, its warnings (deprecated keys) printed as one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(path, required=path != "config.toml")
    for w in caught:
        say(f"warning: {w.message}")
    return config


COMMANDS = {"collect": cmd_collect, "doctor": cmd_doctor, "analyze": cmd_analyze, "backtest": cmd_backtest, "report": cmd_report, "patch": cmd_patch,
            "run": cmd_run, "demo": cmd_demo, "config": cmd_config}


def main(argv: list[str] | None = None) -> int:
    """The command line: the command's exit code (errors said on stderr)."""
    args = build_parser().parse_args(argv)
    log = _log_function(args.quiet)
    with memory.command():
        with contextlib.suppress(ValueError):  # not the main thread (e.g. called from a test's thread)
            signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            config = _with_prices(_load_config(args.config), getattr(args, "prices", None))
            return COMMANDS[args.command](args, config, log)
        except RightsizeError as exc:
            if args.debug:
                raise
            say(f"error: {exc}")
            return exc.exit_code
        except OSError as exc:
            if args.debug:
                raise
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            say(f"error: {where}{exc.strerror or exc}")
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("rightsize: interrupted", file=sys.stderr)
            return 130
        except Terminated:
            print("rightsize: terminated (SIGTERM); earlier outputs were left as they were", file=sys.stderr)
            return 128 + signal.SIGTERM


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
