"""create flags beyond the lifecycle: the session keyring and --no-new-keyring."""

from __future__ import annotations

from conftest import Bundle, Runtime, unique_id


def test_container_gets_its_own_session_keyring(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["maskedPaths"].remove("/proc/keys")
    bundle.shell("cat /proc/keys")
    cid = unique_id()
    result = runtime("run", "--bundle", str(bundle.path), cid, check=True)
    assert f"_ses.{cid}" in result.stdout


def test_no_new_keyring_keeps_the_callers(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["maskedPaths"].remove("/proc/keys")
    bundle.shell("cat /proc/keys")
    cid = unique_id()
    result = runtime("run", "--no-new-keyring", "--bundle", str(bundle.path), cid, check=True)
    assert f"_ses.{cid}" not in result.stdout
