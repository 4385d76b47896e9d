"""Support bundles (`kubectl cluster-info dump`, must-gather), read safely and diagnosed offline with the
live pipeline: `archive` reads the files without trusting them, `reader` detects the layout and loads
objects and logs, `source` serves them as a read-only API to the unchanged collectors, `triage` finds what
is broken, `analyze` diagnoses it and renders the outcome (`aiops analyze BUNDLE`, and rootCause runs
with `spec.bundle`)."""
