"""Only the optional C extension lives here; everything else is in pyproject.toml."""
import os

from setuptools import Extension, setup

# The fast lane (appliance/fastlane) is optional: without a compiler the build goes on without
# it, and HARVESTWATCH_PURE=1 leaves it out on purpose (the image's wheel must be pure Python,
# because it is built here, on x86_64, for an arm64 Pi).
FASTLANE = Extension("appliance.fastlane._fastlane", ["appliance/fastlane/_fastlane.c"],
                     optional=True, extra_compile_args=["-O2", "-Wall"])

setup(ext_modules=[] if os.environ.get("HARVESTWATCH_PURE") else [FASTLANE])
