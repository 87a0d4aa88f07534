"""The ``esdm`` command: look into containers and look after them.

    esdm ls                         containers and their newest epoch
    esdm backends                   configured and measured latency, bandwidth, free space
    esdm info esdm://run1           datasets, epochs, fragments, bytes per backend
    esdm dump esdm://run1 tas 0:4,0 a region as text (or --npy FILE)
    esdm verify esdm://run1         read every block, report corruption (exit 1);
                                    --repair copies damaged replicas from good ones
    esdm gc esdm://run1             remove what no committed epoch refers to
    esdm drain esdm://run1 --wait   copy this node's burst-buffer data to the global tier
    esdm unlock esdm://run1         break an expired or abandoned write lease
    esdm events esdm://run1         the event log: commits, gc runs, user events
    esdm watch esdm://run1          print each new epoch (or event) as it is committed
    esdm vol-env                    the exports that route HDF5 programs through ESDM

Exit codes: 0 success, 1 damage found by verify or refused by drain (or a watch
--count that timed out first), 2 usage error, 3 other error (container missing, lease held,
corrupt metadata), 130 a watch ended by Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from esdm_hpc import measured
from esdm_hpc.backends import open_backend
from esdm_hpc.config import ConfigError, SiteConfig, load_config
from esdm_hpc.drain import drain
from esdm_hpc.epochs import events
from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.history import History
from esdm_hpc.epochs.manifest import Manifest
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import ContainerNotFoundError, CorruptMetadataError, EsdmError
from esdm_hpc.fragment import Fragment
from esdm_hpc.gc import collect_garbage
from esdm_hpc.repair import repair
from esdm_hpc.selection import parse_region
from esdm_hpc.strings import is_string
from esdm_hpc.uri import container_name
from esdm_hpc.verify import Damage, verify
from esdm_hpc.vol import env as vol_env

EXIT_DAMAGE, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 1, 2, 3, 130
EXIT_TIMEOUT = EXIT_DAMAGE  # watch --count: fewer than N before --timeout


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except ConfigError as error:
        return _fail(args, error, EXIT_USAGE)
    except (EsdmError, OSError, KeyError, IndexError) as error:
        return _fail(args, error, EXIT_ERROR)
    except ValueError as error:
        return _fail(args, error, EXIT_USAGE)


def _fail(args: argparse.Namespace, error: BaseException, code: int) -> int:
    print(f"esdm {args.command}: {_message(error)}", file=sys.stderr)
    return code


def _message(error: BaseException) -> str:
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esdm", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "--config", help="site configuration file (default: $ESDM_CONFIG, ./esdm.json, built-in)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, run: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    command("ls", cmd_ls, "list the containers of the site and their newest epoch")
    command("backends", cmd_backends, "the site's backends: configured and measured performance")
    info = command("info", cmd_info, "datasets, shapes, epochs, fragments and bytes per backend")
    info.add_argument("uri", help="esdm://name")
    info.add_argument("--epoch", type=int, help="describe this epoch (default: newest)")
    info.add_argument(
        "--placement",
        action="store_true",
        help="per epoch: where its data is now, and its writes' predicted and measured times",
    )
    dump = command("dump", cmd_dump, "print a region of a dataset, or save it as .npy")
    dump.add_argument("uri", help="esdm://name")
    dump.add_argument("dataset", help="dataset path, e.g. tas or /atmos/tas")
    dump.add_argument("region", nargs="?", default="...", help="e.g. 0:10,5,: (default: all)")
    dump.add_argument("--epoch", type=int, help="read this epoch (default: newest)")
    dump.add_argument("--npy", type=Path, help="write the region to this .npy file instead")
    check = command("verify", cmd_verify, "read every committed block and check its checksum")
    check.add_argument("uri", help="esdm://name")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.add_argument(
        "--repair",
        action="store_true",
        help="copy each damaged replica anew from a good one (takes the write lease)",
    )
    gc = command("gc", cmd_gc, "remove data and metadata no committed epoch refers to")
    gc.add_argument("uri", help="esdm://name")
    gc.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    gc.add_argument("--quiet", action="store_true", help="no progress bar")
    stage = command("drain", cmd_drain, "copy this node's burst-buffer data to its global tier")
    stage.add_argument("uri", help="esdm://name")
    stage.add_argument(
        "--wait", action="store_true", help="wait for a running writer's lease (see --timeout)"
    )
    stage.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds --wait waits (default: 3600)"
    )
    stage.add_argument("--quiet", action="store_true", help="no progress bar")
    unlock = command("unlock", cmd_unlock, "break an expired or abandoned write lease")
    unlock.add_argument("uri", help="esdm://name")
    unlock.add_argument(
        "--force", action="store_true", help="break it even if its writer may be alive"
    )
    log = command("events", cmd_events, "print the container's event log, oldest first")
    log.add_argument("uri", help="esdm://name")
    log.add_argument("--kind", action="append", help="only events of this kind (repeatable)")
    log.add_argument("--since-epoch", type=int, help="only events of this epoch or later")
    log.add_argument("--json", action="store_true", help="one JSON object per line")
    watching = command("watch", cmd_watch, "print each new epoch, or event, as it is committed")
    watching.add_argument("uri", help="esdm://name")
    watching.add_argument(
        "--kind", action="append", help="events of this kind instead of epochs (repeatable)"
    )
    watching.add_argument("--count", type=int, help="stop after this many")
    watching.add_argument("--timeout", type=float, help="stop after this many seconds")
    watching.add_argument("--json", action="store_true", help="one JSON object per line")
    env = command("vol-env", vol_env.run, "print the exports that route HDF5 programs through ESDM")
    vol_env.add_arguments(env)
    return parser


def _site(args: argparse.Namespace) -> SiteConfig:
    return load_config(args.config)


def _store(args: argparse.Namespace) -> ContainerStore:
    site = _site(args)
    backends = {b.id: open_backend(b) for b in site.backends}
    return ContainerStore(container_name(args.uri), backends, site.metadata_backend)


def cmd_ls(args: argparse.Namespace) -> int:
    site = _site(args)
    meta = open_backend(site.backend(site.metadata_backend))
    names = sorted(
        n[len("containers/") : -len("/HEAD")]
        for n in meta.list("containers/")
        if n.endswith("/HEAD")
    )
    for name in names:
        store = ContainerStore(name, {meta.id: meta}, meta.id)
        head = store.head()
        print(f"esdm://{name}\tepoch {head.epoch}")
    if not names:
        print(f"no containers on {meta.id} ({site.backend(meta.id).target})", file=sys.stderr)
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    site = _site(args)
    meta = open_backend(site.backend(site.metadata_backend))
    placement = "learned" if site.performance_model == "learned" else "configured"
    print(f"{site.source}: placement by the {placement} figures; metadata on {meta.id}")
    print(f"  {'backend':<12} {'type':<12} {'tier':<8} {'where':<11} {'':<11}"
          f"{'latency':>10} {'write':>12} {'read':>12} {'free':>10}")  # fmt: skip
    for config in site.backends:
        backend = open_backend(config)
        free = backend.free_bytes()
        model, learned = config.performance, measured.load(meta, config.id)
        print(f"  {config.id:<12} {config.type:<12} {config.tier:<8} {config.accessibility:<11} "
              f"{'configured':<11}{_ms(model.latency_s):>10} {_rate(model.write_bandwidth):>12} "
              f"{_rate(model.read_bandwidth):>12} "
              f"{_size(free) if free is not None else '-':>10}")  # fmt: skip
        latency = _ms(learned.latency_s) if learned.latency_s is not None else "-"
        write = _rate(learned.write_bandwidth) if learned.write_bandwidth is not None else "-"
        samples = f"({learned.latency_samples} + {learned.bandwidth_samples} epochs)"
        print(f"  {'':<45}{'measured':<11}{latency:>10} {write:>12} {'-':>12} "
              f"{'':>10} {samples}")  # fmt: skip
    return 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _rate(bytes_per_second: float) -> str:
    return f"{_size(int(bytes_per_second))}/s"


def cmd_info(args: argparse.Namespace) -> int:
    store = _store(args)
    history = History.load(store, args.epoch)
    last = history.last
    fragments = history.fragments()
    print(f"{args.uri}  epoch {last.epoch} of {history.head.epoch}  committed {last.created}")
    datasets = last.namespace["datasets"]
    # a recreated dataset's predecessor's fragments are stored but not its own
    per_dataset = Counter(
        f.dataset for f in fragments
        if f.dataset in datasets and f.epoch > datasets[f.dataset]["created_epoch"]
    )  # fmt: skip
    for path, record in sorted(datasets.items()):
        shape = "x".join(map(str, record["shape"])) or "scalar"
        dtype = "string" if record["dtype"] == {"vlen": "str"} else record["dtype"]
        print(f"  {path:<30} {shape:<20} {dtype!s:<8} dims {','.join(record['dims'])}"
              f"  {per_dataset[path]} fragments")  # fmt: skip
    per_backend: Counter[str] = Counter()
    for fragment in fragments:
        for replica in fragment.replicas:
            per_backend[replica.backend] += replica.length
    print(f"  epochs: {last.epoch + 1}  fragments: {len(fragments)}")
    for backend, nbytes in sorted(per_backend.items()):
        print(f"  {backend}: {_size(nbytes)}")
    _print_at_risk(fragments)
    if args.placement:
        _print_placement(store.chain(history.head)[: last.epoch + 1], fragments)
    return 0


def _print_placement(manifests: Sequence[Manifest], fragments: Sequence[Fragment]) -> None:
    """Per epoch: where its fragments' replicas are now (a drain or a repair moves
    them), and what its commit recorded of each backend's writes (`measured`)."""
    where: dict[int, Counter[str]] = {}
    for fragment in fragments:
        for replica in fragment.replicas:
            place = replica.backend if replica.node is None else f"{replica.backend}@{replica.node}"
            where.setdefault(fragment.epoch, Counter())[place] += replica.length
    print("  placement (where each epoch's data is now; its writes: predicted / measured):")
    for manifest in manifests[1:]:
        places = ", ".join(
            f"{p} {_size(n)}" for p, n in sorted(where.get(manifest.epoch, {}).items())
        )
        moved = sorted({r["epoch"] for r in manifest.records if "replicated" in r})
        if moved:
            places += f"{', ' if places else ''}new replicas of epochs {moved[0]}-{moved[-1]}"
        timings = manifest.writer.get("backends", {})
        writes = "; ".join(
            f"{backend} {_ms(t['predicted_s'])} / {_ms(t['seconds'])}"
            for backend, t in sorted(timings.items())
        )
        print(
            f"    epoch {manifest.epoch}: {places or 'no data'}"
            + (f"  [{writes}]" if writes else "")
        )


def _print_at_risk(fragments: Sequence[Fragment]) -> None:
    """Per epoch, what is only on node-local storage (not drained yet): lost with the node."""
    at_risk: dict[int, Counter[str]] = {}
    for fragment in fragments:
        if fragment.is_local:
            where = at_risk.setdefault(fragment.epoch, Counter())
            for replica in fragment.replicas:
                where[f"{replica.backend}@{replica.node}"] += replica.length
    if not at_risk:
        return
    print("  at risk (only on node-local storage, not drained yet: run `esdm drain`):")
    for epoch, where in sorted(at_risk.items()):
        places = ", ".join(f"{_size(n)} on {place}" for place, n in sorted(where.items()))
        print(f"    epoch {epoch}: {places}")


def cmd_dump(args: argparse.Namespace) -> int:
    import esdm_hpc

    with esdm_hpc.open(args.uri, config=args.config, epoch=args.epoch) as container:
        node = container[args.dataset]
        if not isinstance(node, esdm_hpc.Dataset):
            raise ValueError(f"{args.dataset} is a group, not a dataset")
        data = node[parse_region(args.region)]
    if args.npy:
        if is_string(data.dtype):
            data = data.astype(str)  # fixed width: a .npy anyone can load without pickle
        with args.npy.open("wb") as f:  # np.save(path) would append ".npy" to the name
            np.save(f, data)
        print(f"wrote {data.shape} {data.dtype} to {args.npy}", file=sys.stderr)
    else:
        with np.printoptions(threshold=sys.maxsize, linewidth=120):
            print(data)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify(_store(args), progress=_progress("verify", args.quiet))
    for damage in report.damage:
        print(damage)
    elsewhere = f", {report.elsewhere} on other nodes" if report.elsewhere else ""
    print(f"{args.uri}: {report.manifests} manifests, {report.packs} packs, "
          f"{report.fragments} fragments, {report.replicas} replicas{elsewhere}, "
          f"{_size(report.bytes_checked)} checked, {len(report.damage)} damaged")  # fmt: skip
    if not (args.repair and report.damage):
        return EXIT_DAMAGE if report.damage else 0
    data = [d for d in report.damage if isinstance(d, Damage)]
    fixed = repair(args.uri, data, config=args.config)
    for line in fixed.repaired:
        print(f"repaired {line}")
    for line in fixed.unrepairable:
        print(f"not repaired: {line}")
    metadata = len(report.damage) - len(data)
    epoch = f" in epoch {fixed.epoch}" if fixed.epoch is not None else ""
    print(f"{args.uri}: repaired {len(fixed.repaired)} fragments{epoch}; "
          f"{len(fixed.unrepairable)} have no good replica, {metadata} metadata objects "
          "are damaged (not repairable)")  # fmt: skip
    return EXIT_DAMAGE if fixed.unrepairable or metadata else 0


def cmd_gc(args: argparse.Namespace) -> int:
    report = collect_garbage(
        _store(args), dry_run=args.dry_run, progress=_progress("gc", args.quiet)
    )
    verb = "would remove" if args.dry_run else "removed"
    for backend, name in report.removed:
        print(f"{verb} {backend}:{name}")
    print(f"{args.uri}: {verb} {len(report.removed)} objects ({_size(report.bytes_freed)}), "
          f"kept {report.kept}")  # fmt: skip
    return 0


def cmd_drain(args: argparse.Namespace) -> int:
    report = drain(
        args.uri,
        config=args.config,
        wait=args.timeout if args.wait else 0.0,
        progress=_progress("drain", args.quiet, unit="B"),
    )
    for refusal in report.refused:
        print(f"esdm drain: {refusal}", file=sys.stderr)
    epochs = f" in epoch(s) {', '.join(map(str, report.epochs))}" if report.epochs else ""
    print(f"{args.uri}: drained {report.fragments} fragments ({_size(report.bytes)}){epochs}; "
          f"removed {report.logs_removed} burst-buffer logs; "
          f"{report.at_risk} fragments only on node-local storage")  # fmt: skip
    return EXIT_DAMAGE if report.refused else 0


def cmd_unlock(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        holder = leases.current(store)
    except CorruptMetadataError as error:
        # as good as expired: a writer opening now would replace it too
        leases.break_lease(store, None)
        print(f"{args.uri}: removed a damaged lease ({error})")
        return 0
    if holder is None:
        if not store.exists():
            raise ContainerNotFoundError(f"{args.uri}: no such container")
        print(f"{args.uri} is not locked")
        return 0
    dead = holder.host == socket.gethostname() and not _pid_alive(holder.pid)
    if not (args.force or dead or holder.expired):
        print(f"esdm unlock: {args.uri} is held by {holder.describe()}, which may still be "
              "writing; use --force if you are sure it is gone", file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    if not leases.break_lease(store, holder):
        print(f"esdm unlock: {args.uri}: the lease changed hands meanwhile; it is left as it is",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    print(f"{args.uri}: broke the lease of {holder.describe()}")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    store = _store(args)
    if not store.exists():
        raise ContainerNotFoundError(f"{args.uri}: no such container")
    for event in events.EventLog(store).read(kinds=args.kind, since_epoch=args.since_epoch):
        print(_event_line(event, args.json))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise ValueError(f"--count must be at least 1, not {args.count}")
    if args.timeout is not None and args.timeout < 0:
        raise ValueError(f"--timeout must not be negative, not {args.timeout}")
    seen = 0
    try:
        for item in events.watch(args.uri, args.config, args.kind, args.timeout):
            if isinstance(item, events.Event):
                print(_event_line(item, args.json), flush=True)
            else:
                shown = json.dumps({"epoch": item}) if args.json else f"{args.uri} epoch {item}"
                print(shown, flush=True)
            seen += 1
            if seen == args.count:
                return 0
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if args.count is None:
        return 0
    print(f"esdm watch: {args.uri}: {seen} of {args.count} before the timeout of "
          f"{args.timeout:g} s", file=sys.stderr)  # fmt: skip
    return EXIT_TIMEOUT


def _event_line(event: events.Event, as_json: bool) -> str:
    return json.dumps(event.to_json(), sort_keys=True) if as_json else event.line()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs: a zombie (exited, not yet reaped
    by its parent) writes nothing more, so it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: kill(2) said it exists
    return state not in (b"Z", b"X")


def _progress(label: str, quiet: bool, unit: str = "obj") -> Callable[[int, int], None] | None:
    if quiet:
        return None
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            # disable=None: a bar on terminals only, not in batch logs
            bar["bar"] = tqdm(
                total=total, desc=label, unit=unit, file=sys.stderr, leave=False, disable=None,
                unit_scale=unit == "B",
            )  # fmt: skip
        bar["bar"].update(done - bar["bar"].n)
        if done >= total:
            bar["bar"].close()

    return update


def _size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{nbytes} B"


if __name__ == "__main__":
    raise SystemExit(main())
