"""numnet playground: watch a real network learn, live, in the browser.

``numnet playground`` (or :func:`serve`) starts a local web server whose page offers what TensorFlow
Playground offers (data sets, input features, layers, activation, learning rate, regularisation, batch
size, play/pause/step/reset) with numnet's engine behind it, and more: every loss and optimiser, the seed,
the live mean |dC/dW| per layer, your own CSV, and the trained model and a script to take away.

Modules, in import order: settings (every choice and the request parsers), data (the points), model (the
network for the settings), pictures (what the page draws), session (one tab's state and the bounded store),
script (the exported script), server (HTTP). The page itself is static/index.html, playground.css and
playground.js: plain HTML, CSS and JavaScript with canvas, no library, nothing fetched from elsewhere.
"""

from .server import create_server, serve
from .session import Session, SessionStore
from .settings import Settings, SettingsError, parse_settings

__all__ = ["Session", "SessionStore", "Settings", "SettingsError", "create_server", "parse_settings", "serve"]
