"""Ships the bundled case files inside the package (``conformance/bundled_cases``) so that an
installed wheel can run them (``conformance run --bundled``). They live at the repository's top
level, ``cases/``, where users, the docs and the pytest testpaths find them, outside every
package, so ``package-data`` cannot name them: the build step copies them. Everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCases(build_py):
    def run(self):
        super().run()
        src = Path(__file__).resolve().parent / "cases"
        if src.is_dir() and not self.dry_run:
            shutil.copytree(src, Path(self.build_lib) / "conformance" / "bundled_cases", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithCases})
