"""Change review: a proposed Deployment or StatefulSet checked before it ships, with no I/O of its own (the
executor, runs/changereview.py, reads the live object, usage, disruption budgets, history and SLO burn).

    from aiops.changes import merge_patch, changes, review
    proposed = merge_patch(live, patch)                # RFC 7386
    r = review(proposed, live, usage={"api": Usage(...)}, pdbs=[...], past=[...], burns=[...])
    r.risk, r.findings[0].message, r.recommendation    # ChangeReview (api/analysisrun.py)

`workload` parses the object (ValueError naming the field the API server would refuse), `diff` lists what
changed, `checks` holds the checks and their thresholds, `review` puts them together.
"""

from aiops.changes.checks import Burn, PastChangeIncident, Usage
from aiops.changes.diff import changes, merge_patch
from aiops.changes.review import OVERRIDE, review

__all__ = ["OVERRIDE", "Burn", "PastChangeIncident", "Usage", "changes", "merge_patch", "review"]
