"""Reaching a cluster: its API client and endpoints (access), the probe behind ManagedCluster status, the clients
of its Prometheus, Tempo, Jaeger and Loki (each behind a small interface), and its GPU fleet."""
