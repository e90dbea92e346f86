"""The old path of :mod:`sslkit.teach.grading`, which student notebooks and the autograders of
earlier terms import (``from sslkit.grading import run_check``): importing it gives the very
module of the teach wing."""

import sys

from .teach import grading

if __name__ == "__main__":
    grading.main_child(sys.argv[1:])
sys.modules[__name__] = grading
