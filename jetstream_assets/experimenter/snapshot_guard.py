"""Whether a fresh Experimenter answer may replace the stored snapshot.

The snapshot feeds every sensor, schedule and run, so an answer that parses to nothing, or that has
lost most of the experiments that were live, is far likelier an Experimenter or proxy fault than
the truth: it is refused, and the last good snapshot stays.
"""

from __future__ import annotations

from collections.abc import Mapping

from jetstream_assets.experimenter.models import Experiment

DEFAULT_MAX_LIVE_LOSS = 0.5
_NAMED_SLUGS = 5


class SnapshotRefused(ValueError):
    """The fresh answer would make the snapshot go backwards; the message gives the counts."""


def check_snapshot_change(
    previous: Mapping[str, Experiment],
    usable: list[Experiment],
    *,
    records: int,
    max_live_loss: float = DEFAULT_MAX_LIVE_LOSS,
) -> None:
    """Raise `SnapshotRefused` when `usable` (the parsed part of an answer of `records` elements)
    must not replace `previous` (the stored snapshot, status derived for today).

    Refused: no usable experiment at all, or more than `max_live_loss` (a share, 0..1) of the
    previously live experiments missing from the answer. An experiment that ended is still in
    the answer, so it never counts as lost."""
    kept = f"kept the last good snapshot ({len(previous)} experiments)"
    if not usable:
        raise SnapshotRefused(
            f"the answer has no usable experiment ({records} records, {records} skipped as malformed); {kept}"
        )
    live = sorted(slug for slug, e in previous.items() if e.status == "Live")
    present = {e.slug for e in usable}
    lost = [slug for slug in live if slug not in present]
    if live and len(lost) / len(live) > max_live_loss:
        named = ", ".join(lost[:_NAMED_SLUGS]) + (", ..." if len(lost) > _NAMED_SLUGS else "")
        raise SnapshotRefused(
            f"{len(lost)} of the {len(live)} live experiments of the last snapshot are missing from the answer "
            f"({len(lost) / len(live):.0%} > the allowed {max_live_loss:.0%}, JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS): "
            f"{named}; the answer has {len(usable)} usable of {records} records; {kept}. "
            "If Experimenter really dropped them, raise JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS (1 accepts any loss) once."
        )
