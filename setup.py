"""Build pycnn's native modules with CMake (the pybind11 cmake_example pattern).

Environment:
  PYCNN_CUDA=0        skip pycnn._C_cuda (same as -DPYCNN_CUDA=OFF)
  PYCNN_SANITIZE=1    build with ASan + UBSan (see `make sanitize`)
  CMAKE_ARGS          extra arguments passed to cmake
  PYCNN_BUILD_EXT=0   install without building the native modules: the Makefile's venv step
                      (an editable install that brings the dependencies), whose next step
                      builds them once, in place (`setup.py build_ext --inplace`); an editable
                      install builds in a temporary directory that a later build cannot reuse
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CMakeExtension(Extension):
    def __init__(self, name: str, sourcedir: str = "") -> None:
        super().__init__(name, sources=[])
        self.sourcedir = os.fspath(Path(sourcedir).resolve())


# Paths a CMake cache records that belong to the Python environment of the build: pip builds in
# a fresh, temporary environment each time (build isolation), so a second `pip install .` finds
# a cache pointing at a ninja, cmake and pybind11 that were deleted with the first one.
_ENV_CACHE_KEYS = ("CMAKE_COMMAND", "CMAKE_MAKE_PROGRAM", "pybind11_DIR", "Python3_EXECUTABLE")


def _cache_is_stale(build_temp: Path, wanted: dict) -> bool:
    """True when build_temp's CMakeCache.txt names a tool that no longer exists, or a tool or
    interpreter other than the one this build passes (wanted); then configure starts afresh."""
    cache = build_temp / "CMakeCache.txt"
    if not cache.exists():
        return False
    for line in cache.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        key = key.split(":")[0]
        if key in _ENV_CACHE_KEYS and value:
            if not os.path.exists(value) or (key in wanted and wanted[key] != value):
                return True
    return False


class CMakeBuild(build_ext):
    def run(self) -> None:
        inplace = self.inplace or getattr(self, "editable_mode", False)
        super().run()
        # CMake also builds pycnn._C_cuda (when nvcc exists) next to _C, but setuptools copies only
        # the extensions it was told about into the source tree for in-place and editable builds;
        # copy the CUDA module too so `import pycnn._C_cuda` works there.
        if inplace:
            for so in (Path(self.build_lib) / "pycnn").glob("_C_cuda*"):
                shutil.copy2(so, Path(__file__).parent / "pycnn" / so.name)

    def build_extension(self, ext: CMakeExtension) -> None:
        ext_fullpath = Path.cwd() / self.get_ext_fullpath(ext.name)
        extdir = ext_fullpath.parent.resolve()
        cfg = "Debug" if os.environ.get("PYCNN_DEBUG") == "1" else "Release"
        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
        ]
        wanted = {"Python3_EXECUTABLE": sys.executable}
        try:
            import pybind11

            wanted["pybind11_DIR"] = pybind11.get_cmake_dir()
            cmake_args.append(f"-Dpybind11_DIR={wanted['pybind11_DIR']}")
        except ImportError:
            pass
        if os.environ.get("PYCNN_CUDA", "1") in ("0", "OFF", "off", "false"):
            cmake_args.append("-DPYCNN_CUDA=OFF")
        if os.environ.get("PYCNN_SANITIZE") == "1":
            cmake_args.append("-DPYCNN_SANITIZE=ON")
        if "CMAKE_ARGS" in os.environ:
            cmake_args += [item for item in os.environ["CMAKE_ARGS"].split(" ") if item]
        try:
            import ninja

            wanted["CMAKE_MAKE_PROGRAM"] = os.path.join(ninja.BIN_DIR, "ninja")
            cmake_args += ["-GNinja", f"-DCMAKE_MAKE_PROGRAM={wanted['CMAKE_MAKE_PROGRAM']}"]
        except (ImportError, AttributeError):
            pass
        cmake_exe = shutil.which("cmake") or "cmake"
        build_temp = Path(self.build_temp) / ext.name
        if _cache_is_stale(build_temp, wanted):
            shutil.rmtree(build_temp)  # configured by another (deleted) build environment
        build_temp.mkdir(parents=True, exist_ok=True)
        subprocess.run([cmake_exe, ext.sourcedir, *cmake_args], cwd=build_temp, check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run([cmake_exe, "--build", ".", "--parallel", jobs], cwd=build_temp, check=True)


_BUILD_EXT = os.environ.get("PYCNN_BUILD_EXT", "1") not in ("0", "OFF", "off", "false")

setup(
    ext_modules=[CMakeExtension("pycnn._C")] if _BUILD_EXT else [],
    cmdclass={"build_ext": CMakeBuild},
)
