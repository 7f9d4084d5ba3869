#!/bin/bash
# The one builder of both worker images' /opt/venv (workers/Dockerfile runs it; see there).
#
#   build_venv.sh deps              /opt/venv with every pinned dependency from /wheels, less
#                                   what no job ever loads: test suites, debug symbols
#   build_venv.sh TARGET            TARGET = process-fov | merge-batch-job: the starfish-batch
#                                   wheel from /dist, then the venv cut down to that job
#
# What a job loads was measured, not guessed: each worker ran the ISS and the MERFISH recipes
# (examples/) with every module it imported dumped at exit (sys.modules). process-fov never
# loads pyarrow (pandas only probes for it), matplotlib or isal; the merge never loads starfish
# or any of the image-processing stack. Each target keeps compiled bytecode (.pyc) only for
# the modules its job imports on start-up (listed below, imported here once); a module loaded
# later is compiled in memory when first imported (PYTHONDONTWRITEBYTECODE=1).
set -euo pipefail
venv=/opt/venv
py=$venv/bin/python
pip=("$py" -m pip --no-input --disable-pip-version-check --no-cache-dir)

site() { "$py" -c "import sysconfig; print(sysconfig.get_path('purelib'))"; }

# Keep only the .pyc of the modules that importing "$@" loads: the rest is never read at start.
keep_bytecode_of() {
    local keep
    keep=$(mktemp)
    "$py" - "$keep" "$@" <<'PY'
import importlib, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
if "boto3" in sys.modules:  # botocore loads most of itself when a client is made
    session = sys.modules["boto3"].session.Session(region_name="us-east-1")
    session.client("s3"), session.client("sts"), session.resource("s3")
with open(sys.argv[1], "w") as out:
    out.write("\n".join(m.__cached__ for m in list(sys.modules.values()) if getattr(m, "__cached__", None)))
PY
    local before after
    before=$(du -sm "$venv" | cut -f1)
    find "$(site)" -name '*.pyc' -print | { grep -vxFf "$keep" || true; } | xargs -r rm -f
    find "$(site)" -depth -type d -name __pycache__ -empty -delete
    rm -f "$keep"
    after=$(du -sm "$venv" | cut -f1)
    echo "build_venv.sh: bytecode kept for the start-up modules only: $before MB -> $after MB" >&2
}

# The package cut down to what the job's entry module can import (closure.py reads the imports
# from the source): no launcher, no demo, no other job's code.
only_the_closure_of() {
    python3 /usr/local/bin/closure.py prune "$(site)/starfish_batch" "$@"
}

# What must import once the venv is cut: the job's own entry module and what it needs.
check_imports() { "$py" -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]" "$@"; }

case ${1:?usage: build_venv.sh deps|process-fov|merge-batch-job} in
deps)
    python3 -m venv "$venv"
    "${pip[@]}" install --no-index --find-links=/wheels -r /wheels/requirements.txt
    "${pip[@]}" check
    site=$(site)
    before=$(du -sm "$venv" | cut -f1)
    # Test suites and their data (numpy, scipy, pandas, sklearn, skimage, sympy, ... ship theirs).
    find "$site" -depth -type d -name tests -prune -exec rm -rf {} +
    # Debug symbols: --strip-unneeded keeps every symbol another object links against. A library
    # that auditwheel patched (patchelf) can break when stripped ("ELF load command address/offset
    # not page-aligned": numpy's OpenBLAS): each one is loaded after stripping, and one that does
    # not load stripped is put back as it came.
    libs=$(mktemp)
    find "$site" -type f \( -name '*.so' -o -name '*.so.*' \) >"$libs"
    while read -r lib; do
        cp -p "$lib" "$lib.unstripped"
        strip --strip-unneeded "$lib" 2>/dev/null || cp -p "$lib.unstripped" "$lib"
    done <"$libs"
    "$py" - "$libs" <<'PY'
import ctypes, os, sys
restored = []
for lib in open(sys.argv[1]).read().splitlines():
    try:
        ctypes.CDLL(lib, mode=os.RTLD_LAZY)
    except OSError:
        os.replace(lib + ".unstripped", lib)
        restored.append(os.path.basename(lib))
    else:
        os.remove(lib + ".unstripped")
print(f"build_venv.sh: {len(restored)} libraries kept unstripped (they do not load stripped): {restored}",
      file=sys.stderr, flush=True)
os._exit(0)  # no interpreter shutdown: some of the libraries loaded above abort in their finalizers
PY
    rm -f "$libs"
    # botocore's API models: the workers call S3 only; STS, SSO and sign-in serve credential
    # providers. The other ~440 services are never loaded.
    find "$site/botocore/data" -mindepth 1 -maxdepth 1 -type d \
        -not \( -name s3 -o -name sts -o -name sso -o -name sso-oidc -o -name signin \) -exec rm -rf {} +
    echo "build_venv.sh: dependencies less tests and debug symbols: $before MB -> $(du -sm "$venv" | cut -f1) MB" >&2
    rm -rf /wheels /root/.cache
    ;;
process-fov)
    "${pip[@]}" install --no-index --no-deps /dist/starfish_batch-*.whl
    "${pip[@]}" check
    # Never loaded by a recipe run (measured): the merge's Parquet (pandas only probes for
    # pyarrow), plotting (starfish plots only on request, seaborn needs matplotlib), the
    # merge's gzip, and docutils.
    "${pip[@]}" uninstall --yes pyarrow matplotlib seaborn fonttools kiwisolver contourpy cycler \
        pyparsing isal docutils
    site=$(site)
    only_the_closure_of starfish_batch.process_fov.main
    rm -f "$venv/bin/starfish-workflow" "$venv/bin/merge-batch-job"
    keep_bytecode_of starfish starfish.image starfish.spots starfish.morphology starfish.types \
        starfish_batch.process_fov.main starfish_batch.process_fov.slice starfish_batch.core.experiment xarray netCDF4 boto3
    # pip and setuptools (the venv's own) last: no job installs anything.
    "${pip[@]}" uninstall --yes setuptools pip
    check_imports starfish starfish.image starfish.spots starfish_batch.process_fov.main starfish_batch.process_fov.slice \
        starfish_batch.core.experiment xarray netCDF4 boto3 skimage.segmentation skimage.measure sklearn.neighbors
    ;;
merge-batch-job)
    "${pip[@]}" install --no-index --no-deps /dist/starfish_batch-*.whl
    "${pip[@]}" check
    # The merge reads the FOVs' netCDF tables with h5py/netCDF4 and writes Parquet, h5ad (h5py),
    # CSV and a PNG (pillow): none of starfish's image processing is ever loaded (measured).
    "${pip[@]}" uninstall --yes starfish scikit-image scikit-learn sympy mpmath networkx trackpy \
        slicedimage xarray imageio tifffile lazy-loader read-roi regional seaborn matplotlib fonttools \
        kiwisolver contourpy cycler pyparsing joblib threadpoolctl narwhals jsonschema \
        jsonschema-specifications referencing rpds-py validators semantic-version diskcache docutils \
        looseversion PyYAML click
    site=$(site)
    only_the_closure_of starfish_batch.merge.job
    rm -f "$venv/bin/starfish-workflow" "$venv/bin/process-fov"
    keep_bytecode_of starfish_batch.merge.job starfish_batch.merge.reader starfish_batch.merge.parquet \
        starfish_batch.merge.cells starfish_batch.merge.plot starfish_batch.merge.spots \
        starfish_batch.merge.overlap starfish_batch.merge.schema starfish_batch.merge.writer \
        starfish_batch.core.layout pyarrow.parquet h5py netCDF4 pandas PIL.Image isal boto3
    "${pip[@]}" uninstall --yes setuptools pip
    check_imports starfish_batch.merge.job starfish_batch.merge.reader starfish_batch.merge.parquet \
        starfish_batch.merge.cells starfish_batch.merge.plot starfish_batch.merge.spots \
        starfish_batch.merge.overlap starfish_batch.core.layout pyarrow.parquet h5py netCDF4 pandas PIL.Image isal boto3
    ;;
*)
    echo "build_venv.sh: unknown target $1 (deps, process-fov or merge-batch-job)" >&2
    exit 2
    ;;
esac
rm -rf /dist /root/.cache
