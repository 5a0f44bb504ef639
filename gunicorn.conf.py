# For the plain gunicorn command: `gunicorn -c gunicorn.conf.py`. `llm-healthcheck serve` applies the
# same settings itself. One worker, gthread, evaluator started in the worker (see
# exporter/serve/gunicorn_options.py).
import os

from exporter.config.settings import load_settings
from exporter.serve.gunicorn_options import options

globals().update(options(load_settings(os.environ)))
wsgi_app = "exporter.serve.wsgi:app"
