"""Only the optional C speed-up lives here; everything else is in pyproject.toml."""
import os

from setuptools import Extension, setup

# One optional leaf: the parser's line_fields in C (appliance/parse/_speedups.c), with its Python
# twin beside it. Without a compiler the build goes on without it; HARVESTWATCH_PURE=1 leaves it
# out on purpose (the image's wheel must be pure Python: it is built here, on x86_64, for a Pi).
SPEEDUPS = Extension("appliance.parse._speedups", ["appliance/parse/_speedups.c"],
                     optional=True, extra_compile_args=["-O2", "-Wall"])

setup(ext_modules=[] if os.environ.get("HARVESTWATCH_PURE") else [SPEEDUPS])
