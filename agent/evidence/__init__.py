"""What proves a case: the snapshot and crop (`snapshots`), the clip of revision 2 (`clips`, `clip_jobs`),
and `edge-agent verify` of stored cases against their signature and hashes (`verify`)."""

from agent.evidence.clip_jobs import ClipJobs, ring_for
from agent.evidence.clips import Clip, ClipError
from agent.evidence.snapshots import crop_jpeg, snapshot_jpeg
from agent.evidence.verify import verify_path

__all__ = ["Clip", "ClipError", "ClipJobs", "crop_jpeg", "ring_for", "snapshot_jpeg", "verify_path"]
