"""Build step of the Floe wheel: compile the XDP objects and ship them as package data.

pyproject.toml holds the metadata; this file only adds `build_bpf` to setuptools' `build`, so
`pip wheel .`, `pip install .` and `python -m build` run bpf/Makefile (clang, bpftool and a
kernel BTF) into a temporary directory and put floe_xdp.o, floe_gen.o, floe_steer.o and
floe_kern_user.h into the wheel as dataplane/bpf/data/. An installed `floe dataplane` (and
`floe serve --instances N`, which loads floe_steer.o) then needs no checkout, clang or
`make bpf` (dataplane/bpf/assets.py finds the files).

An editable install (`make dev`, the tests) skips the step: there the loader reads the
checkout's bpf/ and bpf/build/, which `make bpf` keeps up to date.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build
from setuptools.errors import ExecError

ROOT = Path(__file__).resolve().parent
BPF_SOURCE = ROOT / "bpf"
DATA_DIR = Path("dataplane", "bpf", "data")  # inside the package; see dataplane/bpf/assets.py
OBJECTS = ("floe_xdp.o", "floe_gen.o", "floe_steer.o")
HEADER = "floe_kern_user.h"
TOOLS = ("make", os.environ.get("CLANG", "clang"), os.environ.get("BPFTOOL", "bpftool"))


class BuildBpf(Command):
    """Run bpf/Makefile with BUILD=<build_temp>/bpf and copy its products into build_lib."""

    description = "compile the XDP objects (bpf/Makefile) into the package data"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.build_temp: str | None = None
        self.editable_mode = False

    def finalize_options(self) -> None:
        self.set_undefined_options("build", ("build_lib", "build_lib"),
                                   ("build_temp", "build_temp"))

    def run(self) -> None:
        if self.editable_mode:  # the checkout's bpf/build/ is used (make bpf)
            return
        if not (ROOT / "floe" / "dataplane" / "v1" / "uplink_pb2.py").is_file():
            raise ExecError("the generated gRPC code (floe/) is missing: a wheel without it "
                            "cannot run; generate it first (make proto)")
        missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        if missing:
            raise ExecError(
                f"building Floe's XDP objects needs {', '.join(missing)} (Debian: apt-get "
                "install make clang libbpf-dev bpftool)")
        assert self.build_lib is not None and self.build_temp is not None
        out = Path(self.build_temp).resolve() / "bpf"
        command = ["make", "-s", "-C", str(BPF_SOURCE), f"BUILD={out}"]
        self.announce(f"running {' '.join(command)}", level=2)
        try:
            subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        except subprocess.CalledProcessError as error:
            raise ExecError(
                f"bpf/Makefile failed ({error.returncode}); it needs the kernel's BTF "
                "(/sys/kernel/btf/vmlinux, or BTF=<file> in the environment)") from error
        target = Path(self.build_lib) / DATA_DIR
        target.mkdir(parents=True, exist_ok=True)
        for name in OBJECTS:
            shutil.copyfile(out / name, target / name)
        shutil.copyfile(BPF_SOURCE / HEADER, target / HEADER)

    def get_outputs(self) -> list[str]:
        if self.editable_mode:
            return []
        assert self.build_lib is not None
        return [str(Path(self.build_lib) / DATA_DIR / name) for name in (*OBJECTS, HEADER)]

    def get_output_mapping(self) -> dict[str, str]:
        if self.editable_mode:
            return {}
        assert self.build_lib is not None
        return {str(Path(self.build_lib) / DATA_DIR / HEADER): str(BPF_SOURCE / HEADER)}

    def get_source_files(self) -> list[str]:
        return [str(p.relative_to(ROOT)) for p in sorted(BPF_SOURCE.glob("*.[ch]"))] + [
            "bpf/Makefile"]


class BuildWithBpf(build):
    """setuptools' build, then build_bpf."""

    sub_commands = [*build.sub_commands, ("build_bpf", None)]


setup(cmdclass={"build": BuildWithBpf, "build_bpf": BuildBpf})
