"""What `validate` warns about without refusing (unknown keys, capabilities that cannot be
granted) is what create and run print once, on stderr, before running the container; and
which bundle `create NAME` takes when both ./config.json and ./NAME/config.json exist."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import Bundle, Runtime, unique_id

WARNINGS = ["ociish: warning: linux.namespace: unknown key; did you mean linux.namespaces?",
            "ociish: warning: process.capabilities: unknown capability 'CAP_NOT_ONE' ignored (bounding)"]


def with_likely_mistakes(bundle: Bundle) -> Bundle:
    bundle.config["linux"]["namespace"] = []
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_NOT_ONE")
    return bundle.args("echo", "ran")


def test_validate_warns_and_takes_the_bundle_either_way(runtime: Runtime, bundle: Bundle) -> None:
    with_likely_mistakes(bundle)
    for args in (["validate", str(bundle.path)], ["validate", "-b", str(bundle.path)]):
        result = runtime(*args)
        assert result.returncode == 0 and result.stderr.splitlines() == WARNINGS, result.stderr
        assert result.stdout == f"{bundle.path}/config.json: valid\n"
    both = runtime("validate", "-b", str(bundle.path), str(bundle.path))
    assert both.returncode == 1 and "either as --bundle or as an argument" in both.stderr


def test_create_and_run_print_the_warnings_once_and_still_run(runtime: Runtime, bundle: Bundle, host) -> None:
    with_likely_mistakes(bundle)
    result = runtime("run", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 0 and result.stdout == "ran\n", result.stderr
    assert result.stderr.splitlines() == WARNINGS
    cid = unique_id()
    created = runtime("create", "--bundle", str(bundle.path), cid)
    assert created.returncode == 0 and created.stderr.splitlines() == WARNINGS
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid], [runtime.root])


def test_create_name_with_both_configs_says_it_takes_the_current_directory(runtime: Runtime, bundle: Bundle,
                                                                          tmp_path: Path, host) -> None:
    """runc's rule: the current directory is the bundle; ./NAME/config.json is named as unused."""
    bundle.args("true")
    cid = unique_id()
    shutil.copytree(bundle.path, bundle.path / cid, symlinks=True)
    result = runtime("create", cid, cwd=bundle.path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (f"ociish: warning: create {cid}: using ./config.json, the current directory being "
                             f"the bundle as with runc; ./{cid}/config.json is not used (give --bundle {cid} for it)\n")
    assert runtime.state(cid)["bundle"] == str(bundle.path)
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid], [runtime.root])
