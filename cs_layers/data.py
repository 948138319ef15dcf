"""Datasets (given code): CIFAR-10 download and loading, the generated patterns
default (cs_layers.synthetic), the embedded digits, and the demo images.

One entry point for notebooks and scripts:

    data = get_data()    # CIFAR-10 when downloaded and verified, else the generated patterns

It prints one line saying which dataset it uses. Every split dict holds
X_train, y_train, X_val, y_val, X_test, y_test (images (N, 3, 32, 32), float32
by default, labels int64), class_names and name ("cifar10", "patterns" or "digits").

Where the data lives: the data home is `datasets/` in the repository, or the
directory named by the environment variable CS_LAYERS_DATA. CIFAR-10 goes to
`<data home>/cifar-10-batches-py/`; get it with `bash datasets/get_datasets.sh`
(or `python -m cs_layers.data download`). The environment variable CIFAR10_URL
replaces the download URL, for a mirror; the md5 check keeps any mirror safe.

Safety: the download is streamed to a fresh temporary file made in the data
home with O_EXCL (never a pre-planted name or link), capped at the archive's
known size and an overall deadline, checked against its md5, and renamed only
once it checks out; the archive is extracted member by member after refusing
links, devices, absolute paths and `..`; the batch files (size-capped regular
files) are read with an unpickler that builds only numpy arrays whose data is
really in the file (uint8 images, integer labels), never anything allocated
from a size field. `.verified` records the size and modification time of every
file checked; any change sends the folder back to a full md5 check.
"""
import argparse
import builtins
import errno
import hashlib
import http.client
import inspect
import io
import json
import os
import pickle
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_SIZE = 170_498_071  # bytes
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
VERIFIED_MARKER = ".verified"  # written into cifar-10-batches-py/ after a verified extraction
DOWNLOAD_DEADLINE = 2 * 3600   # seconds for the whole download, however slowly the server sends
MAX_BATCH_BYTES = 40 << 20     # a real batch file is 31 MB; batches.meta is 158 bytes
MAX_IMAGES_PER_BATCH = 10000

PATTERNS_SPLIT = (2500, 500, 500)  # train / val / test images of the generated default
DATASETS = ("patterns", "digits", "cifar10")  # every name get_data accepts besides "auto"
REPO_DATASETS = Path(__file__).resolve().parent.parent / "datasets"  # embedded files live here
GET_CMD = "bash datasets/get_datasets.sh"


class DataError(RuntimeError):
    """A dataset could not be downloaded, verified, extracted or read."""


class UnsafeArchiveError(DataError):
    """An archive member would escape the target, or is a link or a device."""


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """A batch file names a global that the CIFAR-10 format never needs."""


def data_home(root=None):
    """The data home: `root` if given, else $CS_LAYERS_DATA, else the repository's datasets/."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("CS_LAYERS_DATA") or REPO_DATASETS)


def _open_regular(path, what):
    """Open `path` for reading, refusing FIFOs, devices and folders (which would hang or fail later)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise DataError(f"Could not open {path}: {e.strerror}. {what}") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataError(f"{path} is not a regular file (a FIFO, device or folder). {what}")
    return os.fdopen(fd, "rb")


def md5sum(path, chunk_size=1 << 20):
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with _open_regular(path, f"Delete it and run `{GET_CMD}` again.") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- download

def _by_hand(archive):
    return (f"Download {CIFAR10_URL} by hand (in a browser, or with curl/wget) and put it at "
            f"{archive}, then run `{GET_CMD}` again; or set CIFAR10_URL to a mirror.")


def _disk_full(where):
    return DataError(
        f"The disk is full while writing {where}. CIFAR-10 needs about 350 MB free "
        "(170 MB archive + 180 MB extracted). Free some space, or set CS_LAYERS_DATA to a "
        f"directory on a larger disk, then run `{GET_CMD}` again.")


def _copy_stream(response, f, progress_bar, chunk_size=1 << 20, max_bytes=None, deadline=None):
    """Copy response to the open file f in chunks; returns the md5 hex digest.

    Stops with DataError past `max_bytes` or the monotonic `deadline`; reads whatever has
    arrived (read1), so a server that trickles a byte at a time still meets the deadline."""
    h = hashlib.md5()
    read = getattr(response, "read1", response.read)
    total = 0
    for chunk in iter(lambda: read(chunk_size), b""):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise DataError(f"The server sent more than {max_bytes} bytes, more than the archive's size; "
                            f"stopped so it cannot fill the disk. Set CIFAR10_URL to another mirror.")
        if deadline is not None and time.monotonic() > deadline:
            raise DataError("The download took longer than its deadline (the server is too slow or "
                            "stalled); nothing was kept. Try again later or set CIFAR10_URL to a mirror.")
        f.write(chunk)
        h.update(chunk)
        progress_bar.update(len(chunk))
    return h.hexdigest()


def _download(url, archive, md5, progress, timeout, max_bytes=CIFAR10_SIZE, deadline_s=DOWNLOAD_DEADLINE):
    """Stream url to a fresh temporary file next to archive, check its md5, then rename it."""
    deadline = time.monotonic() + deadline_s
    fd, part = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".part")
    part = Path(part)
    try:
        try:
            response = urllib.request.urlopen(url, timeout=min(timeout, deadline_s))
        except (urllib.error.URLError, OSError, ValueError) as e:
            os.close(fd)
            reason = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) \
                else getattr(e, "reason", e)
            raise DataError(f"Could not download {url}: {reason}. {_by_hand(archive)}") from e
        with response, os.fdopen(fd, "wb") as f:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            if total is not None and max_bytes is not None and total > max_bytes:
                raise DataError(f"{url} announces {total} bytes, more than the {max_bytes} of the CIFAR-10 "
                                f"archive; it is not the right file. Set CIFAR10_URL to another mirror.")
            with tqdm(total=total, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=archive.name, disable=not progress) as bar:
                try:
                    got = _copy_stream(response, f, bar, max_bytes=max_bytes, deadline=deadline)
                except (OSError, http.client.HTTPException) as e:
                    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                        raise
                    raise DataError(f"The download of {url} broke off: {e}. "
                                    f"Run `{GET_CMD}` again. {_by_hand(archive)}") from e
                if total is not None and f.tell() < total:  # the server closed the connection early
                    raise DataError(f"The download of {url} broke off after {f.tell()} of {total} "
                                    f"bytes. Run `{GET_CMD}` again. {_by_hand(archive)}")
        if got != md5:
            raise DataError(
                f"Checksum mismatch for {url}: md5 {got}, expected {md5}. The download is "
                "corrupt or the server sent a different file; nothing was kept. Run "
                f"`{GET_CMD}` again, or set CIFAR10_URL to another mirror. {_by_hand(archive)}")
        os.replace(part, archive)
    finally:
        if part.exists() and not part.is_symlink():
            part.unlink()


def _checked_members(tar, archive):
    """The archive's members, after refusing anything unsafe (clear messages)."""
    members = []
    for m in tar.getmembers():
        name = m.name
        parts = Path(name).parts
        why = None
        if name.startswith(("/", "\\")) or Path(name).is_absolute() or (parts and ":" in parts[0]):
            why = "has an absolute path"
        elif ".." in parts or ".." in name.replace("\\", "/").split("/"):
            why = "contains '..' and would escape the target directory"
        elif m.issym() or m.islnk():
            why = f"is a link (to {m.linkname!r})"
        elif m.isdev():
            why = "is a device or FIFO"
        elif not (m.isfile() or m.isdir()):
            why = "is not a regular file or directory"
        if why:
            raise UnsafeArchiveError(
                f"Refusing to extract {archive}: member {name!r} {why}. This is not a genuine "
                f"CIFAR-10 archive; delete it and run `{GET_CMD}` again.")
        members.append(m)
    return members


def _extract(archive, dest):
    """Extract archive safely into a temp dir inside dest, then rename to dest/cifar-10-batches-py."""
    target = dest / CIFAR10_DIR
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".cifar-extract-"))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(tmp, members=_checked_members(tar, archive), filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise
            raise DataError(
                f"Could not extract {archive}: {e}. The archive is truncated or corrupt; "
                f"delete it and run `{GET_CMD}` again.") from e
        extracted = tmp / CIFAR10_DIR
        missing = [f for f in CIFAR10_FILE_MD5 if not (extracted / f).is_file()]
        if missing:
            raise DataError(
                f"{archive} has no {CIFAR10_DIR}/{missing[0]} (missing: {missing}); it is not "
                f"the CIFAR-10 python archive. Delete it and run `{GET_CMD}` again.")
        _write_marker(extracted, md5sum(archive))
        if target.exists():
            shutil.rmtree(target)  # an old, unverified copy
        os.replace(extracted, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _signature(target):
    """{file: [size, mtime_ns]} of the batch files, as they are now (links refused)."""
    sig = {}
    for f in sorted(CIFAR10_FILE_MD5):
        st = os.lstat(target / f)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{target / f} is not a regular file")
        sig[f] = [st.st_size, st.st_mtime_ns]
    return sig


def _write_marker(target, archive_md5):
    """Record what was verified: the archive's md5 and every file's size and mtime."""
    tmp = target / (VERIFIED_MARKER + ".tmp")
    tmp.write_text(json.dumps({"archive_md5": archive_md5, "files": _signature(target)}) + "\n")
    os.replace(tmp, target / VERIFIED_MARKER)


def is_verified(root=None, md5=None):
    """True when <data home>/cifar-10-batches-py holds every batch file and either
    - its `.verified` record matches every file's size and modification time now (written
      by download_cifar10 from an archive whose md5 checked out; `md5`, when given, must be
      that archive's md5), or
    - when md5 is None, every file matches its published md5 (reads the 180 MB once; the
      record is then rewritten, e.g. for a folder made by `tar xzf` by hand)."""
    target = data_home(root) / CIFAR10_DIR
    try:
        sig = _signature(target)
    except OSError:
        return False
    try:
        record = json.loads((target / VERIFIED_MARKER).read_text())
        recorded_md5, recorded_sig = record["archive_md5"], record["files"]
    except (OSError, ValueError, TypeError, KeyError):
        recorded_md5, recorded_sig = None, None
    if recorded_sig == sig and (md5 is None or recorded_md5 == md5):
        return True
    if md5 is not None:
        return False
    try:
        if not all(md5sum(target / f) == h for f, h in CIFAR10_FILE_MD5.items()):
            return False
        _write_marker(target, recorded_md5)
    except (OSError, DataError):
        return False
    return True


def download_cifar10(dest=None, url=None, md5=CIFAR10_MD5, progress=True, timeout=60,
                     keep_archive=False):
    """Download, verify and extract CIFAR-10 into dest/cifar-10-batches-py.

    Inputs:
    - dest: the data home (default: $CS_LAYERS_DATA or the repository's datasets/)
    - url: where to get the archive (default: $CIFAR10_URL or CIFAR10_URL)
    - md5: expected md5 of the archive
    - progress: show a tqdm progress bar
    - timeout: seconds to wait for the server
    - keep_archive: keep the .tar.gz after extracting (it is deleted by default)

    Returns:
    - the Path of the extracted directory

    Skips the download when the directory is already there and verified, and
    uses dest/cifar-10-python.tar.gz when it is already there with the right
    md5 (for a file fetched by hand). Raises DataError (and leaves no partial
    file behind) when the network fails, the md5 differs, the archive is
    truncated or unsafe, or the disk is full.
    """
    dest = data_home(dest)
    url = url or os.environ.get("CIFAR10_URL") or CIFAR10_URL
    if is_verified(dest, md5):
        print(f"CIFAR-10 is already in {dest / CIFAR10_DIR} and verified; nothing to do.")
        return dest / CIFAR10_DIR
    archive = dest / CIFAR10_ARCHIVE
    downloaded = False
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if archive.exists():
            got = md5sum(archive)   # a FIFO or device there is refused, not read forever
            if got != md5:
                raise DataError(
                    f"{archive} is there but its md5 is {got}, expected {md5}: it is incomplete "
                    f"or a different file. Delete it and run `{GET_CMD}` again.")
            print(f"Using {archive} (md5 verified).")
        else:
            print(f"Downloading {url} to {archive}")
            _download(url, archive, md5, progress, timeout)
            downloaded = True
        target = _extract(archive, dest)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            if downloaded and archive.exists():
                archive.unlink()
            raise _disk_full(dest) from e
        raise DataError(f"Could not write to {dest}: {e}. Make sure the directory is writable, "
                        f"or set CS_LAYERS_DATA to one that is, then run `{GET_CMD}` again.") from e
    except DataError:
        if downloaded and archive.exists():
            archive.unlink()  # ours and useless; a file placed by hand is left alone
        raise
    if not keep_archive:
        archive.unlink()
    print(f"CIFAR-10 is ready in {target}")
    return target


# ---------------------------------------------------------------- loading

_reconstruct = np.empty(0).__reduce__()[0]  # numpy's array-unpickling helper, public handle
_DTYPES = {"u1": np.uint8, "i1": np.int8, "i2": np.int16, "i4": np.int32, "i8": np.int64}


def _new_array(cls, shape, typecode):
    """numpy's _reconstruct, for an empty ndarray only (the data comes with BUILD, checked there)."""
    if cls is not np.ndarray or tuple(shape) != (0,):
        raise pickle.UnpicklingError(f"array reconstruction of {cls!r} with shape {shape!r}")
    return _reconstruct(np.ndarray, (0,), typecode)


def _new_dtype(name, *args):
    """np.dtype for the integer types a CIFAR-10 batch can hold, nothing else."""
    if isinstance(name, bytes):
        name = name.decode("latin1")
    if name not in _DTYPES:
        raise pickle.UnpicklingError(f"array dtype {name!r} (only uint8 images and integer labels)")
    return np.dtype(_DTYPES[name])


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _new_array,   # pickled by Python 2 / numpy 1
    ("numpy._core.multiarray", "_reconstruct"): _new_array,  # pickled by numpy 2
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _new_dtype,
    **{(mod, name): getattr(builtins, name)
       for mod in ("builtins", "__builtin__")  # Python 3 and Python 2 names
       for name in ("list", "dict", "tuple")},
}


def _check_array_state(state):
    """Refuse an ndarray state unless its data is all there and the shape is a CIFAR-10 one."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise pickle.UnpicklingError("malformed array state")
    shape, dtype, raw = state[-4], state[-3], state[-1]
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)
            and isinstance(dtype, np.dtype) and dtype.kind in "ui" and isinstance(raw, (bytes, str))):
        raise pickle.UnpicklingError("malformed array state")
    images = dtype == np.uint8 and len(shape) == 2 and shape[1] == 3072 and shape[0] <= MAX_IMAGES_PER_BATCH
    labels = len(shape) == 1 and shape[0] <= MAX_IMAGES_PER_BATCH
    if not (images or labels):
        raise pickle.UnpicklingError(f"an array of shape {shape} {dtype}, which is not CIFAR-10 data")
    if int(np.prod(shape)) * dtype.itemsize != len(raw):
        raise pickle.UnpicklingError(f"an array of shape {shape} whose data is {len(raw)} bytes, not "
                                     f"{int(np.prod(shape)) * dtype.itemsize}")


class _RestrictedUnpickler(pickle._Unpickler):
    """Builds only numpy arrays (checked: CIFAR-10 shapes, data really present) and builtin
    containers; refuses every other global. The pure-Python unpickler, so BUILD can be checked."""

    dispatch = pickle._Unpickler.dispatch.copy()

    def load_build(self):
        if isinstance(self.stack[-2], np.ndarray):
            _check_array_state(self.stack[-1])
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refused to load {self.path}: it names the global {module}.{name}, which a "
                "CIFAR-10 batch never needs (only numpy arrays and builtin containers are "
                "allowed), so nothing was executed. The file was tampered with; delete "
                f"{self.path.parent} and run `{GET_CMD}` again.") from None


def _unpickle(path):
    """Read one CIFAR-10 pickle (protocol 2, from Python 2) safely; keys become str."""
    again = f"Delete {Path(path).parent} and run `{GET_CMD}` again."
    with _open_regular(path, again) as f:
        raw = f.read(MAX_BATCH_BYTES + 1)
    if len(raw) > MAX_BATCH_BYTES:
        raise DataError(f"{path} is over {MAX_BATCH_BYTES >> 20} MB, larger than any CIFAR-10 batch. {again}")
    unpickler = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes")
    unpickler.path = Path(path)
    try:
        obj = unpickler.load()
    except UnsafePickleError:
        raise
    except Exception as e:
        raise DataError(f"Could not read {path}: {e}. {again}") from e
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a dict; delete "
                        f"{Path(path).parent} and run `{GET_CMD}` again.")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _load_batch(path):
    """One batch file -> X uint8 (n, 32, 32, 3), y int64 (n,)."""
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{path} has keys {sorted(batch)}, not 'data' and 'labels'; delete "
                        f"{path.parent} and run `{GET_CMD}` again.")
    data = np.asarray(batch["data"])
    try:
        y = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: the labels are not integers; delete {path.parent} and run "
                        f"`{GET_CMD}` again.") from None
    if y.ndim != 1 or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(y) != len(data) \
            or (y.size and (y.min() < 0 or y.max() > 9)):
        raise DataError(f"{path}: data {data.dtype} {data.shape} with {len(y)} labels is not "
                        f"CIFAR-10; delete {path.parent} and run `{GET_CMD}` again.")
    X = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (n, 32, 32, 3)
    return np.ascontiguousarray(X), y


def load_cifar10(root=None, check_md5=False):
    """Load the CIFAR-10 python batches.

    Inputs:
    - root: the cifar-10-batches-py directory (default: <data home>/cifar-10-batches-py)
    - check_md5: also check each file against CIFAR10_FILE_MD5 (about a second)

    Returns:
    - X_train: uint8 (50000, 32, 32, 3);  y_train: int64 (50000,)
    - X_test: uint8 (10000, 32, 32, 3);   y_test: int64 (10000,)
    """
    root = Path(root) if root is not None else data_home() / CIFAR10_DIR
    missing = [f for f in CIFAR10_FILE_MD5 if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 is not in {root} (missing {missing}); run `{GET_CMD}`.")
    if check_md5:
        for f, expected in CIFAR10_FILE_MD5.items():
            got = md5sum(root / f)
            if got != expected:
                raise DataError(f"{root / f} has md5 {got}, expected {expected}; delete {root} "
                                f"and run `{GET_CMD}` again.")
    train = [_load_batch(root / f"data_batch_{i}") for i in range(1, 6)]
    X_train = np.concatenate([X for X, _ in train])
    y_train = np.concatenate([y for _, y in train])
    X_test, y_test = _load_batch(root / "test_batch")
    return X_train, y_train, X_test, y_test


def cifar10_class_names(root=None):
    """The 10 class names from batches.meta."""
    root = Path(root) if root is not None else data_home() / CIFAR10_DIR
    names = _unpickle(root / "batches.meta").get("label_names")
    if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"{root / 'batches.meta'} has no list of 10 class names; delete {root} and run "
                        f"`{GET_CMD}` again.")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]


def _finish(X_train, y_train, X_val, y_val, X_test, y_test, subtract_mean, dtype):
    """Cast, subtract the training mean image, and pack a split dict."""
    X_train, X_val, X_test = (np.asarray(X, dtype=dtype) for X in (X_train, X_val, X_test))
    mean_image = X_train.mean(axis=0) if subtract_mean else np.zeros(X_train.shape[1:], dtype)
    return {
        "X_train": X_train - mean_image, "y_train": np.asarray(y_train, np.int64),
        "X_val": X_val - mean_image, "y_val": np.asarray(y_val, np.int64),
        "X_test": X_test - mean_image, "y_test": np.asarray(y_test, np.int64),
        "mean_image": mean_image,
    }


def get_cifar10_data(num_training=49000, num_validation=1000, num_test=1000,
                     subtract_mean=True, dtype=np.float32, root=None):
    """CIFAR-10 split for the Solver.

    The training split is the first num_training training images, the
    validation split the num_validation images after them (by default the last
    1000), the test split the first num_test test images. The mean image is
    computed on the training split only.

    Returns a dict:
    - X_train (num_training, 3, 32, 32), X_val, X_test likewise, of `dtype`
    - y_train, y_val, y_test: int64 labels
    - class_names: list of 10 str; name: "cifar10"; mean_image (3, 32, 32)
    """
    X_train, y_train, X_test, y_test = load_cifar10(root)
    if num_training + num_validation > len(X_train) or num_test > len(X_test):
        raise ValueError(
            f"get_cifar10_data: asked for {num_training} train + {num_validation} val of "
            f"{len(X_train)} training images and {num_test} of {len(X_test)} test images; "
            "lower the numbers.")
    val = slice(num_training, num_training + num_validation)

    def to_nchw(X):
        return X.transpose(0, 3, 1, 2)  # (N, 32, 32, 3) -> (N, 3, 32, 32)

    out = _finish(to_nchw(X_train[:num_training]), y_train[:num_training],
                  to_nchw(X_train[val]), y_train[val],
                  to_nchw(X_test[:num_test]), y_test[:num_test], subtract_mean, dtype)
    out.update(class_names=cifar10_class_names(root), name="cifar10")
    return out


def load_digits(upsample=True, num_validation=250, num_test=250, subtract_mean=True,
                dtype=np.float32, seed=0, path=None):
    """The embedded scikit-learn digits (1797 images, 10 classes), split like CIFAR-10.

    Pixels are scaled from 0..16 to 0..255 (like CIFAR-10). The split is
    deterministic for a given seed and stratified: every class is spread evenly
    over train, val and test (by default 1297 / 250 / 250).

    Inputs:
    - upsample: True gives (N, 3, 32, 32) (each pixel a 4x4 block, grey
      repeated over 3 channels), so the default ThreeLayerConvNet fits;
      False gives (N, 1, 8, 8)
    - num_validation, num_test: split sizes
    - subtract_mean: subtract the training mean image
    - dtype: float dtype of the images
    - seed: seed of the split
    - path: the .npz (default datasets/digits.npz)

    Returns the split dict of get_cifar10_data, with name "digits" and
    class_names "0".."9".
    """
    path = Path(path) if path is not None else REPO_DATASETS / "digits.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; it ships with the assignment (datasets/digits.npz). "
                                "Copy it back from a fresh download or unzip of the assignment release "
                                "(in a git checkout: `git checkout -- datasets/digits.npz`).")
    with np.load(path, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"].astype(np.int64)  # (1797, 8, 8), (1797,)
    N = len(labels)
    if num_validation + num_test >= N:
        raise ValueError(f"load_digits: {num_validation} val + {num_test} test leaves no training "
                         f"images out of {N}; lower the numbers.")
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    # Rank of each example within its class, as a fraction: sorting by it interleaves the classes.
    frac = np.empty(N)
    for c in np.unique(labels):
        idx = order[labels[order] == c]
        frac[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    order = order[np.argsort(frac[order], kind="stable")]
    test, val = order[:num_test], order[num_test:num_test + num_validation]
    train = np.sort(order[num_test + num_validation:])

    X = images.astype(np.float64) * (255.0 / 16.0)
    if upsample:
        X = np.repeat(np.repeat(X, 4, axis=1), 4, axis=2)  # (N, 32, 32)
        X = np.repeat(X[:, None], 3, axis=1)  # (N, 3, 32, 32)
    else:
        X = X[:, None]  # (N, 1, 8, 8)
    out = _finish(X[train], labels[train], X[val], labels[val], X[test], labels[test],
                  subtract_mean, dtype)
    out.update(class_names=[str(c) for c in range(10)], name="digits")
    return out


def load_patterns(num_training=PATTERNS_SPLIT[0], num_validation=PATTERNS_SPLIT[1], num_test=PATTERNS_SPLIT[2],
                  subtract_mean=True, unit_scale=True, dtype=np.float32, seed=0):
    """The generated default: ten patterns (stripes of four orientations, checkerboard, dots,
    solid, grid, diagonal grid, rings) in a patch at a random position, size and colour on a
    noisy background (cs_layers.synthetic), split like CIFAR-10.

    Each split is generated from its own seed derived from `seed`, so the validation and test
    images do not change with num_training, and every class has a tenth of each split (or one
    image more). Nothing is downloaded or read from disk.

    Unlike CIFAR-10 (0..255 minus the mean image), the images are also divided by one number,
    the standard deviation of the training pixels, so they have unit scale. On 0..255 inputs the
    first Adam steps of the ThreeLayerConvNet moved every weight into a hidden unit the same way
    (the pooled features are all positive) and switched most hidden units off for good: one
    measured run had 96% of them dead after 2 epochs and 14.8% validation accuracy, the same
    seed on unit-scale inputs 35% and 91%.

    Inputs:
    - num_training, num_validation, num_test: split sizes (default 2500 / 500 / 500)
    - subtract_mean: subtract the training mean image
    - unit_scale: then divide every split by the training pixels' standard deviation
      (only with subtract_mean)
    - dtype: float dtype of the images
    - seed: seed of the generator

    Returns the split dict of get_cifar10_data ((N, 3, 32, 32) images, 0..255 before the mean is
    subtracted), with name "patterns", class_names the ten pattern names and pixel_std (the
    number the images were divided by; 1.0 without unit_scale): the pixels are
    X * pixel_std + mean_image.
    """
    from cs_layers.synthetic import CLASS_NAMES, make_patterns

    if min(num_training, num_validation, num_test) < 0 or num_training < 1:
        raise ValueError(f"load_patterns: split sizes {num_training} / {num_validation} / {num_test}; "
                         "num_training must be >= 1 and the others >= 0.")
    splits = [make_patterns(n, seed=(seed, k)) for k, n in enumerate((num_training, num_validation, num_test))]
    out = _finish(*splits[0], *splits[1], *splits[2], subtract_mean, dtype)
    pixel_std = float(out["X_train"].std()) if subtract_mean and unit_scale else 1.0
    for k in ("X_train", "X_val", "X_test"):
        out[k] = (out[k] / pixel_std).astype(dtype, copy=False)
    out.update(class_names=list(CLASS_NAMES), name="patterns", pixel_std=pixel_std)
    return out


def get_data(name="auto", root=None, **kwargs):
    """The training data: CIFAR-10 when present and verified, else the generated patterns.

    Inputs:
    - name: "auto", "patterns", "digits" or "cifar10"
    - root: the data home that holds cifar-10-batches-py (default: $CS_LAYERS_DATA
      or the repository's datasets/)
    - kwargs: passed to get_cifar10_data, load_patterns or load_digits (e.g. dtype, subtract_mean)

    Returns the split dict (see the module docstring). Prints one line saying
    which dataset is used.
    """
    if name not in ("auto",) + DATASETS:
        raise ValueError(f"get_data: unknown dataset {name!r}; use 'auto', " + ", ".join(repr(d) for d in DATASETS)
                         + ".")
    home = data_home(root)
    have_cifar = name in ("auto", "cifar10") and is_verified(home)
    if name == "cifar10" and not have_cifar:
        raise FileNotFoundError(f"CIFAR-10 is not in {home / CIFAR10_DIR} (or not verified); "
                                f"run `{GET_CMD}` to get it, or use get_data('patterns').")
    use = name if name != "auto" else "cifar10" if have_cifar else "patterns"
    loader = {"cifar10": get_cifar10_data, "patterns": load_patterns, "digits": load_digits}[use]
    accepted = set(inspect.signature(loader).parameters) - {"root", "path"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"get_data: {use} does not take {unknown}; it takes {sorted(accepted)}.")
    if use == "cifar10":
        data = get_cifar10_data(root=home / CIFAR10_DIR, **kwargs)
        print(f"Using CIFAR-10 from {home / CIFAR10_DIR} ({len(data['X_train'])} train / "
              f"{len(data['X_val'])} val / {len(data['X_test'])} test images).")
        return data
    data = loader(**kwargs)
    shape = "x".join(str(s) for s in data["X_train"].shape[1:])
    sizes = " / ".join(str(len(data[k])) for k in ("X_train", "X_val", "X_test"))
    found = "is incomplete or not verified" if (home / CIFAR10_DIR).exists() else "not found"
    note = "" if name != "auto" else (
        f"; CIFAR-10 {found} in {home / CIFAR10_DIR} — run `{GET_CMD}` to get it")
    what = ("the generated patterns dataset" if use == "patterns" else "the embedded digits dataset")
    print(f"Using {what} ({sizes} train / val / test images, {shape}){note}.")
    return data


def load_demo_images():
    """The two demo photographs (CC0, from scikit-image; see datasets/images/ATTRIBUTION.md).

    Returns:
    - {"chelsea": uint8 (200, 200, 3), "coffee": uint8 (200, 200, 3)}
    """
    from matplotlib.image import imread  # reads JPEG through Pillow

    images = {}
    for name in ("chelsea", "coffee"):
        path = REPO_DATASETS / "images" / f"{name}.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; it ships with the repository. Restore it "
                                    f"with `git checkout -- datasets/images/`.")
        img = np.asarray(imread(path))
        if img.dtype != np.uint8 or img.shape != (200, 200, 3):
            raise DataError(f"{path} is {img.dtype} {img.shape}, expected uint8 (200, 200, 3); "
                            "restore it with `git checkout -- datasets/images/`.")
        images[name] = img
    return images


# ---------------------------------------------------------------- command line

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cs_layers.data",
        description="Get CIFAR-10 (set CIFAR10_URL for a mirror, CS_LAYERS_DATA for another data home).")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="download, verify and extract CIFAR-10")
    dl.add_argument("--dest", default=None, help="data home (default: $CS_LAYERS_DATA or datasets/)")
    dl.add_argument("--url", default=None, help="archive URL (default: $CIFAR10_URL or the official one)")
    dl.add_argument("--md5", default=CIFAR10_MD5, help="expected md5 of the archive (default: the official one)")
    dl.add_argument("--keep-archive", action="store_true", help="keep the .tar.gz after extracting")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("info", help="say which dataset get_data() would use")
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            download_cifar10(args.dest, url=args.url, md5=args.md5, progress=not args.no_progress,
                             keep_archive=args.keep_archive)
        else:
            where = data_home() / CIFAR10_DIR
            print(f"CIFAR-10 in {where}: {'present and verified' if is_verified() else 'not found'}")
    except (DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
