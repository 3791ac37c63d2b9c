"""The ``mtl-tutor`` command (also ``python -m mtl_tutor``): :func:`mtl_tutor.cli.main`.

Loading torch and transformers takes seconds. A Ctrl-C or SIGTERM in that time ends the command
with one line and exit code 130, as it does once the command runs (see ``mtl-tutor --help``).
"""

import signal
import sys


def run() -> int:
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("error: interrupted while starting: nothing was done", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return main()


if __name__ == "__main__":
    sys.exit(run())
