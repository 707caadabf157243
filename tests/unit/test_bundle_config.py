"""ConfigBuilder and the config options of `ociish spec` / `ociish bundle` (no containers run here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ociish.bundle import ConfigBuilder
from ociish.bundle.options import apply, parse_bind, parse_namespaces, parse_size, parse_user
from ociish.cli import _parser, main
from ociish.errors import ConfigError, OciishError
from ociish.spec.defaults import default_config


def spec_args(*argv: str) -> ConfigBuilder:
    return apply(ConfigBuilder(), _parser().parse_args(["spec", *argv]))


def test_the_builder_starts_from_the_spec_defaults_and_builds_a_valid_config() -> None:
    assert ConfigBuilder().build() == default_config()
    assert ConfigBuilder(rootless=True).build() == default_config(rootless=True)


def test_every_setter_lands_in_its_config_field() -> None:
    config = (ConfigBuilder().args("cc", "hello.c").env("LANG", "C").env("TERM", "dumb").cwd("/src")
              .user(1000, 100, [27]).terminal(False).readonly(False).readonly_path("/etc").readonly_path("/etc")
              .bind("/srv", "/data", readonly=True).tmpfs("/tmp", ["size=64m"]).memory(256 << 20).cpus(1.5)
              .pids(64).hostname("box").annotation("org.example/a", "b").build())
    process = config["process"]
    assert process["args"] == ["cc", "hello.c"]
    assert process["env"] == [default_config()["process"]["env"][0], "LANG=C", "TERM=dumb"]
    assert process["cwd"] == "/src" and process["terminal"] is False
    assert process["user"] == {"uid": 1000, "gid": 100, "additionalGids": [27]}
    assert config["root"] == {"path": "rootfs", "readonly": False}
    assert config["linux"]["readonlyPaths"].count("/etc") == 1
    assert {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "ro"]} in config["mounts"]
    assert {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=64m"]} in config["mounts"]
    resources = config["linux"]["resources"]
    assert resources["memory"] == {"limit": 256 << 20}
    assert resources["cpu"] == {"quota": 150_000, "period": 100_000}
    assert resources["pids"] == {"limit": 64}
    assert config["hostname"] == "box" and config["annotations"] == {"org.example/a": "b"}


def test_a_mount_at_an_existing_destination_replaces_it_in_place() -> None:
    config = ConfigBuilder().tmpfs("/dev/shm", ["size=1g"]).build()
    destinations = [m["destination"] for m in config["mounts"]]
    assert destinations == [m["destination"] for m in default_config()["mounts"]]
    assert config["mounts"][destinations.index("/dev/shm")]["options"][-1] == "size=1g"
    first = ConfigBuilder().mount("/usr", "overlay", "overlay", ["lowerdir=/x"], first=True).build()
    assert first["mounts"][0]["destination"] == "/usr"


def test_namespaces_create_or_join_and_network_none_or_host() -> None:
    config = ConfigBuilder().namespaces(["pid", "mount", ("network", "/proc/1/ns/net")]).build()
    assert config["linux"]["namespaces"] == [{"type": "pid"}, {"type": "mount"},
                                             {"type": "network", "path": "/proc/1/ns/net"}]
    assert "hostname" not in config  # no uts namespace: the default hostname cannot be set
    host = ConfigBuilder().network("host").build()
    assert "network" not in {ns["type"] for ns in host["linux"]["namespaces"]}
    none = ConfigBuilder().network("host").network("none").build()
    assert {"type": "network"} in none["linux"]["namespaces"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda b: b.args(), "process.args: at least one"),
    (lambda b: b.env("A=B", "x"), "not a variable name"),
    (lambda b: b.cwd("src"), "process.cwd: 'src': must be an absolute path"),
    (lambda b: b.memory(0), "memory.limit: 0"),
    (lambda b: b.cpus(0.001), "expected at least 0.01"),
    (lambda b: b.pids(-1), "pids.limit: -1"),
    (lambda b: b.namespaces(["pid", "pid"]), "'pid' is listed twice"),
    (lambda b: b.namespaces(["bogus"]), "'bogus': expected one of pid, network"),
    (lambda b: b.network("bridge"), "'bridge': expected none or host"),
])
def test_bad_values_are_refused_with_the_field_named(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        call(ConfigBuilder())


def test_build_reports_every_schema_and_spec_problem() -> None:
    builder = ConfigBuilder().user(-1, 0).namespaces(["pid", "mount"]).hostname("box")
    with pytest.raises(ConfigError) as err:
        builder.build()
    lines = err.value.message.splitlines()
    assert any("process.user.uid" in line for line in lines)
    assert any("hostname: setting it needs a uts namespace" in line for line in lines)


def test_write_validates_and_never_overwrites(tmp_path: Path) -> None:
    path = ConfigBuilder().args("true").write(tmp_path)
    assert json.loads(path.read_text())["process"]["args"] == ["true"]
    with pytest.raises(OciishError, match="already exists"):
        ConfigBuilder().write(tmp_path)


def test_sizes_mounts_namespaces_users_from_text(tmp_path: Path) -> None:
    sizes = [parse_size(s, "--memory") for s in ("512k", "64m", "1G", "100", "2gb")]
    assert sizes == [512 << 10, 64 << 20, 1 << 30, 100, 2 << 30]
    with pytest.raises(OciishError, match="--memory: '12x': expected a size"):
        parse_size("12x", "--memory")
    assert parse_bind(f"{tmp_path}:/data:ro,nosuid") == (str(tmp_path), "/data", ["ro", "nosuid"])
    for bad, message in (("/x", "expected SRC:DST"), (f"{tmp_path}/missing:/d", "no such file"),
                         (f"{tmp_path}:/d:size=1", "unknown option 'size=1'")):
        with pytest.raises(OciishError, match=message):
            parse_bind(bad)
    assert parse_namespaces("pid, net,mnt=/proc/1/ns/mnt") == ["pid", "network", ("mount", "/proc/1/ns/mnt")]
    assert parse_user("1000") == (1000, 0) and parse_user("1000:27") == (1000, 27)
    with pytest.raises(OciishError, match="--user: 'bob'"):
        parse_user("bob")


def test_spec_flags_apply_in_a_fixed_order() -> None:
    config = spec_args("--hostname", "h", "--namespaces", "uts,mount,pid", "--network", "none", "--env", "A=1",
                       "-e", "B=2", "--no-terminal", "--no-readonly", "--tmpfs", "/tmp:size=1m",
                       "--args", "sh", "-c", "echo --memory").build()
    assert config["hostname"] == "h"
    assert [ns["type"] for ns in config["linux"]["namespaces"]] == ["uts", "mount", "pid", "network"]
    assert config["process"]["args"] == ["sh", "-c", "echo --memory"]
    assert config["process"]["env"][-2:] == ["A=1", "B=2"]
    assert config["process"]["terminal"] is False and config["root"]["readonly"] is False
    with pytest.raises(OciishError, match="--env: 'A': expected NAME=VALUE"):
        spec_args("--env", "A")
    with pytest.raises(OciishError, match="--args: give the command"):
        spec_args("--args")


def test_spec_without_options_writes_the_defaults_and_errors_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "-b", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "config.json").read_text()) == default_config()
    assert main(["spec", "-b", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["spec", "-b", str(tmp_path / "x"), "--cpus", "many"]) == 1
    assert "argument --cpus: invalid float value: 'many'" in capsys.readouterr().err
