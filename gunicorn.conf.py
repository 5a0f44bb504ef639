# For the plain gunicorn command: `gunicorn -c gunicorn.conf.py`. `llm-healthcheck serve` applies the
# same settings itself. One worker, gthread, evaluator started in the worker (see
# exporter/gunicorn_config.py).
import os

from exporter.gunicorn_config import options
from exporter.settings import load_settings

globals().update(options(load_settings(os.environ)))
wsgi_app = "exporter.wsgi:app"
