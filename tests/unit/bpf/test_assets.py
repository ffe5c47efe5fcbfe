"""Where the header and objects are found: a checkout's bpf/, else the installed package's."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataplane.bpf.assets import BPF_FILES, CHECKOUT_DIR, HEADER, locate
from dataplane.bpf.errors import ObjectFileError
from dataplane.bpf.layout import GEN_OBJECT, KERN_USER_HEADER, XDP_OBJECT

REPO = Path(__file__).resolve().parents[3]


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    checkout, package = tmp_path / "repo" / "bpf", tmp_path / "site" / "data"
    checkout.mkdir(parents=True)
    package.mkdir(parents=True)
    return checkout, package


def test_a_checkout_reads_its_own_bpf_directory() -> None:
    assert CHECKOUT_DIR == REPO / "bpf"
    assert KERN_USER_HEADER == REPO / "bpf" / HEADER
    assert XDP_OBJECT == REPO / "bpf" / "build" / "floe_xdp.o"
    assert GEN_OBJECT == REPO / "bpf" / "build" / "floe_gen.o"


def test_the_checkout_wins_over_a_copy_in_the_package(tmp_path: Path) -> None:
    checkout, package = _tree(tmp_path)
    (checkout / HEADER).write_text("#define FLOE_X 1\n")
    (package / HEADER).write_text("#define FLOE_X 2\n")
    files = locate(checkout, package)
    assert files.header == checkout / HEADER
    assert files.xdp_object == checkout / "build" / "floe_xdp.o"
    assert files.steer_object == checkout / "build" / "floe_steer.o"
    assert "make bpf" in files.missing(files.xdp_object)


def test_without_a_checkout_the_package_data_is_used(tmp_path: Path) -> None:
    checkout, package = _tree(tmp_path)  # bpf/ may exist (an unrelated folder) without a header
    (package / HEADER).write_text("#define FLOE_X 2\n")
    files = locate(checkout, package)
    assert (files.header, files.xdp_object, files.gen_object, files.steer_object) == (
        package / HEADER, package / "floe_xdp.o", package / "floe_gen.o",
        package / "floe_steer.o")
    message = files.missing(files.xdp_object)
    assert str(files.xdp_object) in message and "reinstall" in message
    assert "make bpf" not in message  # there is no checkout to run it in


def test_neither_names_both_places(tmp_path: Path) -> None:
    checkout, package = _tree(tmp_path)
    with pytest.raises(ObjectFileError) as caught:
        locate(checkout, package)
    assert str(checkout) in str(caught.value) and str(package) in str(caught.value)


def test_the_loader_says_how_to_rebuild_a_missing_object(tmp_path: Path) -> None:
    from dataplane.bpf.loader import XdpProgram

    with pytest.raises(ObjectFileError) as caught:
        XdpProgram.attach("lo", "inline", object_path=tmp_path / "floe_xdp.o")
    assert str(caught.value) == BPF_FILES.missing(tmp_path / "floe_xdp.o")
