"""Build submission.zip: `python -m cs_layers.submit [--partial] [--no-check] [--max-mb 20] [-o FILE]`.

Packs exactly the graded files, from the folder that holds cs_layers/:
  cs_layers/*.py
  assignments/convnets/ConvolutionalNetworks.ipynb, assignments/convnets/PyTorch.ipynb
  assignments/convnets/convnet_model.npz   (written by the notebook, task2_9)
  assignments/convnets/challenge_model.pt  (written by PyTorch.ipynb, task3_5)

Refuses (exit 1, no zip written) when a file is missing, a module has a syntax
error, a notebook does not parse, an nbgrader cell of the release was deleted
or a read-only one edited (compared with assignments/convnets/.release_manifest.json
from the release), the checkpoint or the challenge weights are unreadable, or the
zip would be too big.
Warns when notebook cells were run out of order or never run. Then prints
what it packed and the self-check status of every task.

With --partial, missing graded files (say the checkpoint of an unfinished
task2_9) are left out and listed instead of refusing; the grader scores what
they carry as missing. Everything that is there is still checked as above, and
anything broken still refuses.

Only regular files inside the assignment folder are packed: a link (or a file
reached through a linked folder), a FIFO or a device is refused, and every
file is read once, without following links, and packed from those bytes.
Each file must fit the grader's own size limit before compression. `-o` must
name a `.zip` outside cs_layers/ and assignments/ (a folder gets
submission.zip inside it).
"""
import argparse
import ast
import json
import os
import re
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

from cs_layers import course, notebook_cells

NB_DIR = course.NOTEBOOK_DIR
NOTEBOOKS = [f"{NB_DIR}/{name}.ipynb" for name in course.NOTEBOOKS]
MODEL = f"{NB_DIR}/{course.MODEL_FILE}"
CHALLENGE = f"{NB_DIR}/{course.CHALLENGE_FILE}"
MANIFEST = f"{NB_DIR}/.release_manifest.json"
MODEL_KEYS = course.PARAM_NAMES
DEFAULT_MAX_MB = 20.0
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")


class Refused(ValueError):
    """A file cannot be packed; the message says what to do."""


def package_root():
    return Path(__file__).resolve().parent.parent


def graded_files(root):
    """Relative paths of every file the submission must hold."""
    py = sorted(f"cs_layers/{p.name}" for p in (root / "cs_layers").glob("*.py") if _MODULE.match(p.name))
    return py + NOTEBOOKS + [MODEL, CHALLENGE]


def read_packed(root, rel):
    """The bytes of `root/rel`, refusing links (in the file or a folder on its way), special
    files and files over the grader's limit; read through one descriptor opened without
    following links, so what is checked is what is packed."""
    path = root / rel
    for parent in [*reversed(Path(rel).parents)][1:]:
        if (root / parent).is_symlink():
            raise Refused(f"{rel}: the folder {parent.as_posix()} is a link; only files inside the assignment "
                          f"folder are packed. Replace the link with a real folder holding your files.")
    if path.is_symlink():
        raise Refused(f"{rel}: is a link (to {os.readlink(path)}); only files inside the assignment folder are "
                      f"packed. Replace it with the file itself (cp --remove-destination TARGET {rel}).")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise Refused(f"{rel}: cannot be opened ({e.strerror}); restore it from the release.") from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{rel}: is not a regular file; restore it from the release.")
        limit = course.size_cap(rel)  # the grader's cap (grading/unpack.py), before compression
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"{rel}: over {limit >> 20} MiB, the grader's limit for this file; "
                      f"{'remove the large data from it' if rel.endswith('.py') else 'clear large outputs'} "
                      f"and save it again.")
    return data


def check_python(root, rel, data=None):
    try:
        data = (root / rel).read_bytes() if data is None else data
        ast.parse(data.decode("utf-8"), filename=rel)
    except SyntaxError as e:
        return [f"{rel}:{e.lineno}: syntax error ({e.msg}); fix it, then run the self-check again."]
    except UnicodeDecodeError:
        return [f"{rel}: not UTF-8 text; save it as UTF-8."]
    return []


def _source(cell):
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def check_notebook(root, rel, expected, data=None):
    """(problems, warnings) of one notebook; `expected` is its manifest entry (grade_id -> flags)."""
    import nbformat
    try:
        text = (root / rel).read_bytes() if data is None else data
        nb = nbformat.reads(text.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # nbformat raises several types for broken files
        return [f"{rel}: not a valid notebook ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                f"restore it from your last good copy (File > Revert / checkpoints) and save again."], []
    problems, warnings = [], []
    for what, gid in notebook_cells.problems(nb, dict(sorted(expected.items()))):
        flags = expected.get(gid, {})
        kind = "graded" if flags.get("grade") else "read-only" if flags.get("locked") else "answer"
        if what == "damaged":
            problems.append(f"{rel}: cell {gid} has damaged nbgrader metadata; copy the cell back from a "
                            f"fresh copy of the release notebook.")
        elif what == "duplicated":
            problems.append(f"{rel}: the {kind} cell '{gid}' appears twice; delete the copy you made "
                            f"(keep the release's cell).")
        elif what == "deleted":
            problems.append(f"{rel}: the {kind} cell '{gid}' of the release was deleted; copy it back "
                            f"from a fresh copy of the release notebook into the same place.")
        else:
            problems.append(f"{rel}: the {kind} cell '{gid}' was edited; it must stay as released "
                            f"(copy it back from a fresh copy of the release notebook).")
    code = [c for c in nb.cells if c.cell_type == "code" and _source(c).strip()]
    counts = [c.get("execution_count") for c in code]
    never = sum(n is None for n in counts)
    if code and never == len(code):
        warnings.append(f"{rel}: no cell has been run; run all cells (Kernel > Restart & Run All) and save.")
    elif never:
        warnings.append(f"{rel}: {never} of {len(code)} code cells were never run; "
                        f"run all cells (Kernel > Restart & Run All) and save.")
    ran = [n for n in counts if n is not None]
    if any(b <= a for a, b in zip(ran, ran[1:])):
        warnings.append(f"{rel}: cells were run out of order; Kernel > Restart & Run All, then save, "
                        f"so the saved outputs match the code.")
    return problems, warnings


def check_model(root, rel, raw=None):
    import io

    import numpy as np
    try:
        with np.load(io.BytesIO((root / rel).read_bytes() if raw is None else raw), allow_pickle=False) as data:
            missing = [k for k in MODEL_KEYS if k not in data.files]
            bad = [k for k in MODEL_KEYS if k in data.files and not np.all(np.isfinite(data[k]))]
    except Exception as e:  # a truncated or foreign file raises various errors
        return [f"{rel}: cannot be read as a checkpoint ({type(e).__name__}); save it again with "
                f"cs_layers.cnn.save_model in the notebook (task2_9)."]
    if missing:
        return [f"{rel}: lacks {', '.join(missing)}; save the trained model with cs_layers.cnn.save_model."]
    if bad:
        return [f"{rel}: {', '.join(bad)} hold NaN or inf; retrain (lower the learning rate) and save again."]
    return []


def check_challenge(root, rel, raw=None):
    """The challenge file must be what torch_nets.save_challenge writes (read as tensors only)."""
    import io
    try:
        import torch
        saved = torch.load(io.BytesIO((root / rel).read_bytes() if raw is None else raw),
                           map_location="cpu", weights_only=True)
        ok = isinstance(saved, dict) and saved.get("dataset") in ("patterns", "digits", "cifar10") \
            and isinstance(saved.get("state_dict"), dict)
    except Exception as e:  # a truncated or foreign file raises various errors
        return [f"{rel}: cannot be read as challenge weights ({type(e).__name__}); save it again "
                f"with torch_nets.save_challenge in PyTorch.ipynb (task3_5)."]
    if not ok:
        return [f"{rel}: not written by torch_nets.save_challenge(model, dataset, path); save it "
                f"again with that function (task3_5)."]
    return []


def _missing_hint(f):
    return {MODEL: "train the ConvNet in the notebook (task2_9); it saves this file",
            CHALLENGE: "train the challenge model in PyTorch.ipynb (task3_5); it saves this file",
            }.get(f, "restore it from the release")


def _manifest_ok(manifest):
    """True for {notebook: {grade_id: {flag: bool, ["sha256": hex]}}} with a cell for every notebook."""
    if not isinstance(manifest, dict):
        return False
    for nb in NOTEBOOKS:
        cells = manifest.get(Path(nb).name)
        if not isinstance(cells, dict) or not cells:
            return False
        for gid, flags in cells.items():
            if not isinstance(flags, dict) or not all(isinstance(flags.get(k, False), bool)
                                                      for k in ("grade", "locked", "solution")):
                return False
            if "sha256" in flags and not (isinstance(flags["sha256"], str) and len(flags["sha256"]) == 64):
                return False
    return True


def collect(root, partial=False, contents=None):
    """(files, problems, warnings, left_out) for the submission rooted at `root`.

    files: what to pack. With partial=True a missing graded file is not a
    problem: it is dropped from `files` and listed in `left_out`. `contents`,
    when a dict, receives the bytes of every file that checked out (what
    write_zip packs).
    """
    problems, warnings = [], []
    contents = {} if contents is None else contents
    if (root / "cs_layers").is_symlink():
        problems.append("cs_layers/ is a link; only files inside the assignment folder are packed. Replace "
                        "the link with the real folder.")
        return [], problems, warnings, []
    files = graded_files(root)
    if not any(f.startswith("cs_layers/") for f in files):
        problems.append(f"no cs_layers/*.py under {root}; run this from the assignment folder.")
    missing = [f for f in files if not os.path.lexists(root / f)]
    left_out = missing if partial else []
    if not partial:
        for f in missing:
            problems.append(f"{f}: missing; {_missing_hint(f)} (or submit what you have with --partial).")
    try:
        manifest = json.loads(read_packed(root, MANIFEST).decode("utf-8"))
    except (Refused, ValueError):
        manifest = None
        problems.append(f"{MANIFEST}: missing or unreadable; copy it back from the release (it lists the "
                        f"notebook cells the grader needs).")
    if manifest is not None and not _manifest_ok(manifest):
        manifest = None
        problems.append(f"{MANIFEST}: damaged or empty (it must list the nbgrader cells of both notebooks); "
                        f"copy it back from the release.")
    for f in files:
        if f in missing:
            continue
        try:
            data = read_packed(root, f)
        except Refused as e:
            problems.append(str(e))
            continue
        contents[f] = data
        if f.endswith(".py"):
            problems += check_python(root, f, data)
        elif f.endswith(".ipynb"):
            p, w = check_notebook(root, f, (manifest or {}).get(Path(f).name, {}), data)
            problems += p
            warnings += w
        elif f == MODEL:
            problems += check_model(root, f, data)
        elif f == CHALLENGE:
            problems += check_challenge(root, f, data)
    return [f for f in files if f not in left_out], problems, warnings, left_out


def output_path(root, output):
    """Where the zip goes: `output` (a folder gets submission.zip inside); refused when it is not a
    .zip or would land on a graded file or inside cs_layers/ or assignments/."""
    out = Path(output) if output else root / "submission.zip"
    if out.is_dir() and not out.is_symlink():
        out = out / "submission.zip"
    out = Path(os.path.abspath(out))
    if out.suffix.lower() != ".zip":
        raise Refused(f"-o {output}: the submission must be a .zip file (e.g. -o submission.zip).")
    real = out.parent.resolve() / out.name
    for folder in ("cs_layers", NB_DIR):
        inside = (root / folder).resolve()
        if real.parent == inside or inside in real.parents:
            raise Refused(f"-o {output}: would write inside {folder}/, next to your graded files; "
                          f"write it elsewhere (default: {root / 'submission.zip'}).")
    return out


def write_zip(root, files, out, max_bytes, contents=None):
    """Write `files` (their bytes from `contents`, else read safely) into `out` atomically;
    returns its size or raises ValueError when too big."""
    out = Path(out)
    contents = contents or {}
    fd, tmp = tempfile.mkstemp(prefix=".submission-", suffix=".zip.tmp", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                data = contents[f] if f in contents else read_packed(root, f)
                zf.writestr(f, data)
        size = os.path.getsize(tmp)
        if size > max_bytes:
            raise ValueError(f"the zip would be {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
                             f"clear large notebook outputs (Edit > Clear Outputs of big plots) and retry.")
        os.replace(tmp, out)
        return size
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None, root=None):
    parser = argparse.ArgumentParser(prog="python -m cs_layers.submit", description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default=None, help="zip to write (default: submission.zip)")
    parser.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB, help="size limit in MB")
    parser.add_argument("--no-check", action="store_true", help="skip the self-check summary")
    parser.add_argument("--partial", action="store_true",
                        help="pack what exists and list the missing graded files (scored as missing) "
                             "instead of refusing; broken files still refuse")
    args = parser.parse_args(argv)
    root = Path(root) if root else package_root()
    try:
        out = output_path(root, args.output)
    except Refused as e:
        print(f"submission NOT written: {e}", file=sys.stderr)
        return 1
    contents = {}
    files, problems, warnings, left_out = collect(root, partial=args.partial, contents=contents)
    for w in warnings:
        print(f"WARNING: {w}")
    if not problems:
        try:
            write_zip(root, files, out, int(args.max_mb * 1e6), contents)
        except (ValueError, OSError) as e:
            problems.append(str(e))
    if problems:
        print(f"submission NOT written ({len(problems)} problem(s)); any older {out.name} is out of date:",
              file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({os.path.getsize(out) / 1e3:.1f} kB):")
    for f in files:
        print(f"  {f:<55} {len(contents[f]) / 1e3:>9.1f} kB")
    if left_out:
        print(f"PARTIAL submission: {len(left_out)} graded file(s) missing and NOT included "
              f"(the grader scores what they carry as missing):")
        for f in left_out:
            print(f"  - {f}: {_missing_hint(f)}, then submit again")
    if not args.no_check:
        from cs_layers import check
        try:
            result = check.run(quiet=True, root=root)
            print("self-check status (what the public tests say; the grader runs hidden tests):")
            print(result.table())
        except (RuntimeError, FileNotFoundError) as e:
            print(f"self-check could not run: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
