"""Packaging: `maturin build --release --sdist` gives one cp311-abi3 wheel and an sdist; each
installs into a fresh virtual environment with nothing else and works there.

These tests compile the extension in release mode (the wheel, then the sdist's own build), so
they take minutes. CI runs them; set MAILPUMP_SKIP_PACKAGING=1 to skip them locally. Builds
share CARGO_TARGET_DIR with the rest of the run, so only mailpump's own crates are compiled
again.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("MAILPUMP_SKIP_PACKAGING") == "1",
        reason="MAILPUMP_SKIP_PACKAGING=1 (packaging builds release wheels: minutes)",
    ),
    # Release builds are slow on small machines; every other test keeps the default bound.
    pytest.mark.timeout(3600),
]


def workspace_version() -> str:
    """The one place the version is written: the Cargo workspace."""
    with open(ROOT / "Cargo.toml", "rb") as f:
        return str(tomllib.load(f)["workspace"]["package"]["version"])


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    return done


@dataclasses.dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    maturin = shutil.which(
        "maturin", path=str(Path(sys.executable).parent)
    ) or shutil.which("maturin")
    if maturin is None:
        pytest.fail("maturin is not installed (pip install 'maturin>=1.9,<2')")
    run(maturin, "build", "--release", "--locked", "--sdist", "--out", out, cwd=ROOT)
    wheels = sorted(out.glob("*.whl"))
    sdists = sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1, wheels
    assert len(sdists) == 1, sdists
    return Dist(wheels[0], sdists[0])


def fresh_venv(where: Path) -> Path:
    """A new virtual environment with pip and nothing else; returns its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    python = where / "bin" / "python"
    assert python.exists()
    return python


def smoke(python: Path, cwd: Path) -> None:
    """What a user does first: the import, the version, the demo, the console script."""
    # Run from an empty directory so that the checkout's python/ is not on the path.
    done = run(
        python,
        "-c",
        "import mailpump, mailpump.smtp, mailpump.mime, mailpump.ltn12, mailpump.types\n"
        "import importlib.metadata as m\n"
        "msg = mailpump.to_email(mailpump.message({'headers': {'subject': 'hi'}, 'body': 'x'}))\n"
        "assert msg['Subject'] == 'hi'\n"
        "assert not hasattr(mailpump._mailpump, '_panic_for_tests'), 'a test hook was shipped'\n"
        "print(mailpump.__version__, m.version('mailpump'), mailpump.__file__)",
        cwd=cwd,
    )
    version, dist_version, location = done.stdout.split()
    assert version == dist_version == workspace_version()
    assert str(ROOT) not in location, "imported the checkout, not the installed package"
    demo = run(python, "-m", "mailpump", "demo", "--print", cwd=cwd)
    msg = email.message_from_string(demo.stdout, policy=email.policy.default)
    assert msg["Subject"] == "Here is a message with attachments"
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain",
        "image/png",
    ]
    script = python.parent / "mailpump"
    assert (
        run(script, "--version", cwd=cwd).stdout.strip()
        == f"mailpump {workspace_version()}"
    )
    assert "exit codes:" in run(script, "send", "--help", cwd=cwd).stdout


def test_one_abi3_wheel_with_the_stub_and_nothing_else(dist: Dist) -> None:
    name = dist.wheel.name
    assert name.startswith(f"mailpump-{workspace_version()}-cp311-abi3-"), name
    with zipfile.ZipFile(dist.wheel) as z:
        names = z.namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"mailpump", f"mailpump-{workspace_version()}.dist-info"}, top
    for needed in ("py.typed", "_mailpump.pyi", "types.py", "cli.py", "__main__.py"):
        assert f"mailpump/{needed}" in names
    assert any(n.startswith("mailpump/_mailpump.") and n.endswith(".so") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(dist.wheel) as z:
        scripts = z.read(entry_points).decode().replace(" ", "")
    assert "mailpump=mailpump.__main__:main" in scripts


def test_the_wheel_installs_alone_and_works(dist: Dist, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    run(
        python, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", dist.wheel
    )
    listed = json.loads(run(python, "-m", "pip", "list", "--format=json").stdout)
    installed = {p["name"]: p["version"] for p in listed}
    for tooling in ("pip", "setuptools", "wheel"):
        installed.pop(tooling, None)
    assert installed == {"mailpump": workspace_version()}, installed
    (tmp_path / "cwd").mkdir()
    smoke(python, tmp_path / "cwd")


def test_the_sdist_holds_the_sources_and_builds(dist: Dist, tmp_path: Path) -> None:
    with tarfile.open(dist.sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for needed in (
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "crates/mailpump/Cargo.toml",
        "crates/mailpump/src/lib.rs",
        "crates/mailpump-py/src/lib.rs",
        "python/mailpump/__init__.py",
        "python/mailpump/_mailpump.pyi",
        "python/mailpump/py.typed",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "bench/", ".ci/", "target/")) for n in names)
    # The sdist's own build, as pip does it for a user without a wheel for their platform.
    # maturin comes from this environment (no network); CARGO_TARGET_DIR is inherited.
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--no-index", "--quiet", "--wheel-dir", wheels, dist.sdist)  # fmt: skip
    [wheel] = wheels.glob("*.whl")
    assert wheel.name.startswith(f"mailpump-{workspace_version()}-cp311-abi3-"), (
        wheel.name
    )
    python = fresh_venv(tmp_path / "venv")
    run(python, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", wheel)
    (tmp_path / "cwd").mkdir()
    smoke(python, tmp_path / "cwd")


def test_the_version_is_written_once() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert "version" not in project and "version" in project["dynamic"]
    for crate in ("mailpump", "mailpump-py"):
        with open(ROOT / "crates" / crate / "Cargo.toml", "rb") as f:
            assert tomllib.load(f)["package"]["version"] == {"workspace": True}, crate
    import mailpump

    assert mailpump.__version__ == workspace_version()
