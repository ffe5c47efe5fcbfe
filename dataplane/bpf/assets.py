"""Where the BPF build products are: a checkout's bpf/, else the copy inside the package.

A checkout (the editable install of `make dev`, the tests, the benchmarks) reads
bpf/floe_kern_user.h and the objects `make bpf` writes to bpf/build/, so a rebuilt program is
used at once. An installed wheel has no bpf/ beside the package: its build step (setup.py,
`build_bpf`) compiled the objects and copied them with the header into dataplane/bpf/data/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dataplane.bpf.errors import ObjectFileError

__all__ = ["BPF_FILES", "CHECKOUT_DIR", "HEADER", "PACKAGE_DATA_DIR", "BpfFiles", "locate"]

HEADER = "floe_kern_user.h"
CHECKOUT_DIR = Path(__file__).resolve().parents[2] / "bpf"
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(slots=True, frozen=True)
class BpfFiles:
    """The header and objects one installation uses, and what rebuilds a missing object."""

    header: Path
    xdp_object: Path
    gen_object: Path
    steer_object: Path  # the control plane's QUIC steering (app/serving/steering.py)
    rebuild: str  # what to do when an object is missing, for error messages

    def missing(self, path: Path) -> str:
        """The message for an object that is not there."""
        return f"BPF object {path} not found ({self.rebuild})"


def locate(checkout: Path = CHECKOUT_DIR, package: Path = PACKAGE_DATA_DIR) -> BpfFiles:
    """The checkout's bpf/ when this package runs from one, else the package's data.

    The checkout wins: its header is the one being edited, and a stale copy in the package
    must never hide it. ObjectFileError when neither has the header (a wheel built without
    its build step)."""
    if (checkout / HEADER).is_file():
        build = checkout / "build"
        return BpfFiles(checkout / HEADER, build / "floe_xdp.o", build / "floe_gen.o",
                        build / "floe_steer.o", f"run `make bpf` in {checkout.parent}")
    if (package / HEADER).is_file():
        return BpfFiles(package / HEADER, package / "floe_xdp.o", package / "floe_gen.o",
                        package / "floe_steer.o",
                        "this installation of floe lacks its BPF objects: reinstall it from a "
                        "wheel built with bpf/Makefile (see docs/deployment.md)")
    raise ObjectFileError(
        f"{HEADER} is neither in {checkout} (a checkout) nor in {package} (an installed "
        "wheel): reinstall floe from a wheel built with bpf/Makefile (see docs/deployment.md)")


BPF_FILES = locate()
