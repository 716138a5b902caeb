"""`make bench`: print the figures the issues ask for."""

from __future__ import annotations

import sys

from tests.bench import broadcasts, callbacks, growth, knowledge


def main() -> int:
    sections = [
        ("Knowledge base", knowledge.run),
        ("Callback throughput", callbacks.run),
        ("Growth: a million rows in the message log", growth.run),
        ("Scheduled pushes", broadcasts.run),
    ]
    for title, run in sections:
        print(f"== {title}", flush=True)
        for line in run():
            print(line, flush=True)
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
