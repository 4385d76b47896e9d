"""Postmortems of resolved Incidents: Markdown from the operator's records (render), the model's summary with
citations where a model may write one (summary), stored in S3-compatible object storage, linked from status and
indexed for search (publish). The timer that drives it is controllers/postmortems.py; docs/knowledge.md."""
