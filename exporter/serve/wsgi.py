"""WSGI entry for running under the plain `gunicorn` command: `gunicorn -c gunicorn.conf.py`.

`llm-healthcheck serve` is the usual way; this module builds the same runtime from env vars.
"""

import os

from exporter.config.settings import load_settings
from exporter.serve.logs import configure_logging
from exporter.serve.runtime import build_runtime, current, install

_settings = load_settings(os.environ)
configure_logging(_settings.log_format, _settings.log_level)
install(build_runtime(_settings))
app = current().app
