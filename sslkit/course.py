"""The old path of :mod:`sslkit.teach.course`, kept for ``python -m sslkit.course``: importing
it gives the very module of the teach wing."""

import sys

from .teach import course

if __name__ == "__main__":
    sys.exit(course.main())
sys.modules[__name__] = course
