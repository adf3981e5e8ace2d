"""Argument parsing shared by the project's Python scripts: the project's error format (one
line on stderr, exit 2) and integer arguments with a lower bound."""

import argparse
import sys


class Parser(argparse.ArgumentParser):
    """argparse with the project's error format: one line on stderr, exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def count(minimum):
    """An argparse type: an integer of at least `minimum`."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse
