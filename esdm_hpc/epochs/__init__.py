"""Epochs (docs/architecture.md, "Epochs"): everything between a rank's write and
the HEAD that publishes it.

- `writer`: one rank's writes in the open epoch (data logs, fragment records);
- `commit`: the collective protocol that publishes an epoch;
- `manifest`: HEAD, manifests and packs as stored;
- `store`: where a container's metadata and logs live, and the atomic publish;
- `lease`: the single-writer lease;
- `history`, `chaincheck`: the committed history, loaded and checked;
- `events`: the container's event log, and `watch`.
"""
