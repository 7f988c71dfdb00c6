"""python -m stripe_sandbox [--host 127.0.0.1] [--port 12111] [--state FILE]"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import make_server


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--state", metavar="FILE", help="keep state in this JSON file across restarts")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host (the sandbox has no real security)")
    parser.add_argument("--retry-base-ms", type=float, default=None,
                        help="first webhook retry delay (default 1000, or $STRIPE_SANDBOX_RETRY_BASE_MS)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.host, args.port, allow_remote=args.allow_remote, verbose=args.verbose,
                             state_file=args.state, retry_base_ms=args.retry_base_ms)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # Serving runs in a thread so that the signal handler only sets a flag and
    # shutdown() is called from here, never from inside the serving loop.
    server.start()
    state = f" (state: {args.state})" if args.state else ""
    print(f"stripe_sandbox listening on {server.base_url}{state}", flush=True)
    stop.wait()
    server.stop()
    try:
        print("stripe_sandbox stopped", flush=True)
    except BrokenPipeError:  # whoever read our address has gone away
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
