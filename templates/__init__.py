"""Every word a person reads (Jinja2): Slack Block Kit in slack/, email in email/, the SOG's
reports in report/. Installed as the package `mappa_templates` (pyproject.toml maps it onto
this folder), so a wheel carries the templates; bot/templates.py loads them by that name."""
