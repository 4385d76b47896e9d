"""The bottom of the runtime: the Kubernetes client (kube.Client), the StatusBuilder every writer uses, the
event bus and the activity counters. Imports nothing of the operator but the resource shapes (aiops.api)."""
