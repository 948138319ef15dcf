#!/usr/bin/env bash
# Download, verify (md5) and extract CIFAR-10 into datasets/cifar-10-batches-py/.
#
#   bash datasets/get_datasets.sh
#   CIFAR10_URL=https://your.mirror/cifar-10-python.tar.gz bash datasets/get_datasets.sh
#
# Environment:
#   CIFAR10_URL     download from this URL instead of the official one (the md5 is still checked)
#   CS_LAYERS_DATA  data home to download into (default: this datasets/ directory)
#   PYTHON          interpreter to use (default: the repository's .venv, else python3)
# Extra arguments go to `python -m cs_layers.data download` (see --help).
set -euo pipefail
unset CDPATH  # an exported CDPATH makes `cd` print the folder (and pick another one)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then
        python="$repo/.venv/bin/python"
    else
        python="python3"
    fi
fi

cd "$repo"
exec "$python" -m cs_layers.data download --dest "${CS_LAYERS_DATA:-$here}" "$@"
