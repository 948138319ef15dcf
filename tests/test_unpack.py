"""Safe intake of submissions: whitelist, links, `..`, zip bombs, corrupt zips, size caps."""
from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest

from cs_layers import course
from grading import unpack as up

NAMES = frozenset({"layers.py", "fast_layers.py"})


def _intake(src, tmp_path):
    return up.unpack(src, tmp_path / "staging", module_names=NAMES)


def _zip(path, members, *, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _symlink_member(zf, name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def test_zip_keeps_only_whitelisted_files(tmp_path):
    src = _zip(tmp_path / "s1.zip", {
        "cs_layers/layers.py": "x = 1\n",
        "cs_layers/numpy.py": "raise SystemExit\n",
        "sitecustomize.py": "raise SystemExit\n",
        "assignments/convnets/PyTorch.ipynb": "{}",
        "assignments/convnets/convnet_model.npz": b"PK",
        "notes.txt": "hi",
    })
    intake = _intake(src, tmp_path)
    assert intake.files == ["assignments/convnets/PyTorch.ipynb",
                            "assignments/convnets/convnet_model.npz", "cs_layers/layers.py"]
    assert set(intake.ignored) == {"cs_layers/numpy.py", "sitecustomize.py", "notes.txt"}
    assert (intake.staging / "cs_layers/layers.py").read_text() == "x = 1\n"
    assert not (intake.staging / "sitecustomize.py").exists()
    assert intake.module_files == ["cs_layers/layers.py"]


def test_zip_of_a_folder_is_accepted(tmp_path):
    src = _zip(tmp_path / "s1.zip", {"s1/cs_layers/layers.py": "x = 1\n"})
    assert _intake(src, tmp_path).files == ["cs_layers/layers.py"]


@pytest.mark.parametrize("name, words", [
    ("../evil.py", "outside"),
    ("cs_layers/../../evil.py", "outside"),
    ("/etc/evil.py", "absolute"),
    ("C:/evil.py", "absolute"),
    ("cs_layers\\..\\evil.py", "backslash"),
])
def test_zip_with_escaping_path_is_rejected(tmp_path, name, words):
    src = _zip(tmp_path / "s.zip", {"cs_layers/layers.py": "x = 1\n", name: "boom"})
    with pytest.raises(up.Rejected, match=words):
        _intake(src, tmp_path)
    assert not (tmp_path / "evil.py").exists()


def test_zip_with_symlink_is_rejected(tmp_path):
    src = tmp_path / "s.zip"
    with zipfile.ZipFile(src, "w") as zf:
        _symlink_member(zf, "cs_layers/layers.py", "/work/main/cs_layers/layers.py")
    with pytest.raises(up.Rejected, match="link"):
        _intake(src, tmp_path)


def test_zip_with_device_file_is_rejected(tmp_path):
    src = tmp_path / "s.zip"
    with zipfile.ZipFile(src, "w") as zf:
        info = zipfile.ZipInfo("cs_layers/layers.py")
        info.create_system = 3
        info.external_attr = (stat.S_IFCHR | 0o666) << 16
        zf.writestr(info, "")
    with pytest.raises(up.Rejected, match="special"):
        _intake(src, tmp_path)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04garbage", b"not a zip at all" * 10])
def test_corrupt_zip_is_rejected(tmp_path, data):
    src = tmp_path / "s.zip"
    src.write_bytes(data)
    with pytest.raises(up.Rejected, match="corrupt"):
        _intake(src, tmp_path)


def test_zip_with_bad_crc_is_rejected(tmp_path):
    src = _zip(tmp_path / "s.zip", {"cs_layers/layers.py": "x = 1\n" * 100},
               compression=zipfile.ZIP_STORED)
    raw = bytearray(src.read_bytes())
    pos = raw.index(b"x = 1")
    raw[pos] = ord("y")  # payload no longer matches its CRC
    src.write_bytes(bytes(raw))
    with pytest.raises(up.Rejected, match="corrupt"):
        _intake(src, tmp_path)


def test_zip_bomb_is_rejected_by_ratio(tmp_path):
    src = _zip(tmp_path / "s.zip", {"assignments/convnets/convnet_model.npz": b"\0" * (20 << 20)})
    with pytest.raises(up.Rejected, match="zip bomb"):
        _intake(src, tmp_path)


def test_zip_bomb_is_rejected_by_declared_size(tmp_path, monkeypatch):
    monkeypatch.setattr(up, "MAX_ZIP_UNCOMPRESSED", 1000)
    src = _zip(tmp_path / "s.zip", {"junk.bin": os.urandom(2000)})
    with pytest.raises(up.Rejected, match="unpacks to"):
        _intake(src, tmp_path)


def test_lying_declared_size_is_capped_while_copying(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "MAX_PY_BYTES", 100)
    fin = io.BytesIO(b"a" * 1000)
    with pytest.raises(up.Rejected, match="larger than its limit"):
        up.copy_stream(fin, tmp_path / "x.py", 100, "cs_layers/x.py")


def test_oversized_module_file_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "MAX_PY_BYTES", 100)
    src = _zip(tmp_path / "s.zip", {"cs_layers/layers.py": "#" * 500})
    with pytest.raises(up.Rejected, match="limit"):
        _intake(src, tmp_path)


def _folder(tmp_path):
    src = tmp_path / "s1"
    (src / "cs_layers").mkdir(parents=True)
    (src / "cs_layers/layers.py").write_text("x = 1\n")
    (src / "numpy.py").write_text("raise SystemExit\n")
    return src


def test_folder_keeps_only_whitelisted_files(tmp_path):
    intake = _intake(_folder(tmp_path), tmp_path)
    assert intake.files == ["cs_layers/layers.py"]
    assert intake.ignored == ["numpy.py"]


def test_folder_with_symlinked_file_is_rejected(tmp_path):
    src = _folder(tmp_path)
    secret = tmp_path / "secret.py"
    secret.write_text("SOLUTION = 42\n")
    (src / "cs_layers/fast_layers.py").symlink_to(secret)
    with pytest.raises(up.Rejected, match="link"):
        _intake(src, tmp_path)
    assert not (tmp_path / "staging/cs_layers/fast_layers.py").exists()


def test_folder_with_symlinked_package_dir_is_rejected(tmp_path):
    ref = tmp_path / "instructor"
    (ref / "cs_layers").mkdir(parents=True)
    (ref / "cs_layers/layers.py").write_text("SOLUTION = 42\n")
    src = tmp_path / "s2"
    src.mkdir()
    (src / "cs_layers").symlink_to(ref / "cs_layers")
    with pytest.raises(up.Rejected, match="link"):
        _intake(src, tmp_path)


def test_folder_with_fifo_is_rejected_without_blocking(tmp_path):
    src = _folder(tmp_path)
    os.mkfifo(src / "cs_layers/fast_layers.py")
    with pytest.raises(up.Rejected, match="not a regular file"):
        _intake(src, tmp_path)


def test_symlinked_submission_is_rejected(tmp_path):
    link = tmp_path / "s3"
    link.symlink_to(_folder(tmp_path))
    with pytest.raises(up.Rejected, match="link"):
        _intake(link, tmp_path)


def test_other_file_kinds_are_rejected(tmp_path):
    src = tmp_path / "s.tar"
    src.write_bytes(b"x")
    with pytest.raises(up.Rejected, match="neither a folder nor a .zip"):
        _intake(src, tmp_path)


def test_staging_must_be_fresh(tmp_path):
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging/old.py").write_text("")
    with pytest.raises(ValueError, match="not empty"):
        _intake(_folder(tmp_path), tmp_path)


def test_release_module_names_lists_the_package(tmp_path):
    (tmp_path / "layers.py").write_text("")
    (tmp_path / "notes.md").write_text("")
    assert up.release_module_names(tmp_path) == {"layers.py"}
    with pytest.raises(RuntimeError, match="no cs_layers"):
        up.release_module_names(tmp_path / "nowhere")
