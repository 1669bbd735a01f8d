"""User-data: the TTL timer first, from an absolute time; the preparation script; 16 KB
limit. The TTL block itself is run in tests/unit/test_node_ttl.py."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sparkube import phases
from sparkube.aws import userdata
from sparkube.errors import ConfigError
from sparkube.nodes import ttl
from sparkube.spec import ClusterSpec

R = '"${SPARKUBE_NODE_ROOT:-}"'


def test_ttl_is_installed_before_preparation_from_an_absolute_time() -> None:
    expires = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    text = userdata.render("#!/bin/bash\necho prepare\n", expires_at=expires)
    assert text.startswith("#!/bin/bash\n")
    assert userdata.ttl_block(expires) in text
    # the absolute time goes to the node's expiry file, then the timer that reads it
    written = f"echo {int(expires.timestamp())} > "
    assert written in text
    assert text.index(written) < text.index(f"{ttl.EXPIRES_FILE}.tmp {R}{ttl.EXPIRES_FILE}")
    assert text.index(f"{R}{ttl.CHECK_SCRIPT}") < text.index("echo prepare")
    assert text.index("systemctl enable --now sparkube-ttl.timer") < text.index("echo prepare")
    assert text.rstrip().endswith("exec /var/lib/sparkube/prepare.sh")


def test_workers_added_later_get_the_same_absolute_expiry() -> None:
    expires = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    paris = expires.astimezone(timezone(timedelta(hours=1)))
    assert userdata.ttl_block(expires) == userdata.ttl_block(paris)
    assert "at 2026-11-25T16:00:00Z;" in userdata.ttl_block(paris)


def test_without_ttl_nothing_shuts_down() -> None:
    text = userdata.render(userdata.MINIMAL_PREPARE, expires_at=None)
    assert "shutdown" not in text
    assert "sparkube-ttl" not in text
    assert "expires-at" not in text


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
    assert text.count(f"cat > {R}{ttl.CHECK_SCRIPT} <<") == 1
    assert text.count("systemctl enable --now sparkube-ttl.timer") == 1


def test_delimiter_inside_the_script_is_refused() -> None:
    with pytest.raises(ValueError):
        userdata.render("SPARKUBE_PREPARE_SCRIPT_END\n", expires_at=None)
