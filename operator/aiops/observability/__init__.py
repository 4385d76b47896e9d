"""What the operator says about itself: /metrics (activity counters and figures computed from cluster state),
/healthz and /readyz."""
