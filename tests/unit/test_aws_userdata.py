"""User-data: TTL first, from an absolute time; the preparation script; 16 KB limit."""

from __future__ import annotations

import gzip
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sparkube import phases
from sparkube.aws import userdata
from sparkube.errors import ConfigError
from sparkube.spec import ClusterSpec


def test_ttl_is_scheduled_before_preparation_from_an_absolute_time() -> None:
    expires = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    text = userdata.render("#!/bin/bash\necho prepare\n", expires_at=expires)
    assert text.startswith("#!/bin/bash\n")
    assert f"expires_at={int(expires.timestamp())}" in text
    assert text.index("shutdown -h") < text.index("echo prepare")
    assert text.rstrip().endswith("exec /var/lib/sparkube/prepare.sh")


def test_without_ttl_nothing_shuts_down() -> None:
    text = userdata.render(userdata.MINIMAL_PREPARE, expires_at=None)
    assert "shutdown" not in text


def test_ttl_block_computes_minutes_left(tmp_path: Path) -> None:
    """Run the TTL block with a fake `shutdown` and check the minutes it asks for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    (bin_dir / "shutdown").write_text(f'#!/bin/sh\necho "$@" > {log}\n')
    (bin_dir / "shutdown").chmod(0o755)
    expires = datetime.now(UTC) + timedelta(minutes=90)
    script = "#!/bin/bash\n" + userdata.ttl_block(expires)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["bash", "-c", script], check=True, env=env)
    minutes = int(log.read_text().split()[1].lstrip("+"))
    assert 89 <= minutes <= 91


def test_large_scripts_are_gzipped_and_too_large_ones_refused() -> None:
    big = "#!/bin/bash\n" + "echo 'a fairly repetitive line of setup'\n" * 1000
    packed = userdata.encode(userdata.render(big, expires_at=None))
    assert len(packed) <= userdata.USER_DATA_LIMIT
    assert gzip.decompress(packed).startswith(b"#!/bin/bash")
    random = os.urandom(40000).hex()
    with pytest.raises(ConfigError, match="16 KB"):
        userdata.encode(userdata.render(random, expires_at=None))


def test_small_scripts_are_sent_as_is() -> None:
    text = userdata.render(userdata.MINIMAL_PREPARE, expires_at=None)
    assert userdata.encode(text) == text.encode()


def test_the_real_preparation_script_fits_and_leaves_ttl_to_the_wrapper() -> None:
    spec = ClusterSpec(ttl=timedelta(hours=4))
    script = phases.prepare_script(spec)
    if script is None:
        pytest.skip("sparkube.nodes.prepare is not present")
    text = userdata.render(script, expires_at=datetime.now(UTC) + timedelta(hours=4))
    assert len(userdata.encode(text)) <= userdata.USER_DATA_LIMIT
    assert text.count('shutdown -h "+$minutes"') == 1


def test_delimiter_inside_the_script_is_refused() -> None:
    with pytest.raises(ValueError):
        userdata.render("SPARKUBE_PREPARE_SCRIPT_END\n", expires_at=None)
