"""The real-node cluster these tests share (tests/fixtures/bedcluster.py).

pytest runs this package's modules one after another in file-name order, so the numbers
in their names are the order a user's cluster lives through: ``up`` and what it left
(1), jobs on it (2..8), then what ends it (9: a stop and start, a node that joins later,
``down``). The cluster is made for the first test that asks for it and lives until the
last module's ``down`` (or the package's end, if a test failed before)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.bedcluster import BedCluster, BedLab, open_lab, start_bed_cluster


@pytest.fixture(scope="package")
def bed_cluster(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedCluster]:
    with start_bed_cluster(moto_url, tmp_path_factory.mktemp("bedcluster")) as cluster:
        yield cluster


@pytest.fixture
def bed_lab(bed_cluster: BedCluster, tmp_path: Path) -> Iterator[BedLab]:
    """One test's use of the shared cluster (its own working directory); afterwards what
    its jobs made is removed and up's Spark RBAC and job settings are as up left them."""
    with open_lab(bed_cluster, tmp_path) as lab:
        yield lab
