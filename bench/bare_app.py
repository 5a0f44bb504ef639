"""The framework's floor: a Falcon app that only answers 200, under the sidecar's gunicorn settings.

    python -m bench.bare_app PORT

Same worker class, thread count, keep-alive and logging as `llm-healthcheck serve`
(exporter.serve.gunicorn_options.options), minus the hooks that start the evaluator, so the
difference between this and the sidecar is what the product adds to the probe path.
"""

import sys

import falcon
from gunicorn.app.base import BaseApplication

from exporter.config.settings import load_settings
from exporter.serve.gunicorn_options import options

_HOOKS = ("on_starting", "post_worker_init", "worker_exit")


class _Ok:
    def on_get(self, req, resp):
        resp.content_type = "text/plain; charset=utf-8"
        resp.text = "Healthy\n"


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/health", _Ok())
    return app


class _BareApplication(BaseApplication):
    def __init__(self, port: int):
        self._port = port
        super().__init__()

    def load_config(self):
        settings = load_settings({"APP_PORT": str(self._port), "BIND_HOST": "127.0.0.1"})
        for key, value in options(settings).items():
            if key not in _HOOKS:
                self.cfg.set(key, value)
        self.cfg.set("proc_name", "bare-falcon")

    def load(self):
        return create_app()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m bench.bare_app PORT", file=sys.stderr)
        return 2
    _BareApplication(int(argv[0])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
