"""A one-line progress bar on a terminal; silent when the output is not one."""

import time


class ProgressBar:
    def __init__(self, stream, label: str, enabled: bool, clock=time.monotonic, width: int = 30):
        self._stream = stream
        self._label = label
        self._enabled = enabled
        self._clock = clock
        self._width = width
        self._started = clock()
        self._last_draw = -1.0
        self._drawn = False

    def update(self, fraction: float) -> None:
        if not self._enabled:
            return
        now = self._clock()
        # Redrawing more than ten times a second only costs time.
        if now - self._last_draw < 0.1 and fraction < 1.0:
            return
        self._last_draw = now
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(round(fraction * self._width))
        elapsed = now - self._started
        eta = f", {elapsed / fraction - elapsed:.0f}s left" if 0 < fraction < 1 else ""
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {fraction * 100:3.0f}%{eta}   ")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\r" + " " * (len(self._label) + self._width + 30) + "\r")
            self._stream.flush()
