"""Build the BPF objects once if they are missing (clang + bpftool; no root needed)."""

from __future__ import annotations

import subprocess

import pytest

from dataplane.bpf.layout import BPF_DIR, GEN_OBJECT, XDP_OBJECT


@pytest.fixture(scope="session", autouse=True)
def bpf_objects() -> None:
    if not (XDP_OBJECT.is_file() and GEN_OBJECT.is_file()):
        subprocess.run(["make", "-s", "-C", str(BPF_DIR)], check=True, timeout=120)
