"""`aiops mcp`: an MCP server (stdio or streamable HTTP) over the read-only tools of aiops.tools, with two
changes made for a reviewed Kubernetes identity: start an AnalysisRun, approve an SOP step.

    server.py    the MCP wiring: tools/list, tools/call, protocol errors, the transports
    auth.py      the HTTP bearer token (the caller's Kubernetes identity: aiops.clusters.reviews)
    actions.py   start_run and approve_step
"""
