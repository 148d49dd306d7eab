"""`python -m webauth`: read a password twice (or once from a pipe) and print its hash for the configuration."""

from __future__ import annotations

import getpass
import sys

from webauth.passwords import hash_password


def main() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ; nothing printed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("choose a password of 8 characters or more", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
