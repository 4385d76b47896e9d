"""Notifications: an Incident's diagnosis, approvals and resolution sent to Slack, Teams, e-mail or a
CloudEvents webhook, through a PostgreSQL outbox with at-least-once delivery."""
