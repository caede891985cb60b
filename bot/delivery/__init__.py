"""Transports: Slack Web API and SMTP."""
