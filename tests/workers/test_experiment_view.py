"""A worker's view of one FOV: the same images and codebook as starfish's ``Experiment.from_json``,
read from the FOV's own documents only, through one client, wherever the experiment lives."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

from starfish_batch.core import storage
from starfish_batch.core.errors import ExperimentError
from starfish_batch.core.experiment import list_fovs, open_fov, plan
from starfish_batch.demo.experiment import widen_experiment
from starfish_batch.launcher.runs import new_run
from starfish_batch.process_fov import main as process_fov
from tests.support.workflow import FOV_NAMES, ISS_RECIPE, REPO_ROOT, upload_tree, write_experiment


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return write_experiment(tmp_path_factory.mktemp("experiment"))


def starfish_experiment(url: str):
    from starfish import Experiment  # lazy: import starfish takes seconds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Experiment.from_json(url)


def assert_same_fov(view, fov, codebook) -> None:
    """Every image of every type, with its coordinates, and the codebook, equal to starfish's."""
    assert view.fov.name == fov.name
    assert view.fov.image_types == fov.image_types
    for image_type in fov.image_types:
        ours = list(view.fov.get_images(image_type))
        theirs = list(fov.get_images(image_type))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert a.xarray.identical(b.xarray), image_type
    assert view.codebook.identical(codebook)
    # the stage extent process-fov records (report.html's map): the primary tiles' xc/yc bounds
    primary = fov.get_image("primary").xarray
    want = {axis: [float(primary.coords[axis].min()), float(primary.coords[axis].max())] for axis in ("xc", "yc")}
    assert set(view.extent) == set(want)
    for axis, bounds in want.items():
        assert view.extent[axis] == pytest.approx(bounds), axis


def assert_matches_starfish(experiment_url: str, starfish_url: str | None = None) -> None:
    exp = starfish_experiment(starfish_url or experiment_url)
    assert list_fovs(experiment_url) == [fov.name for fov in exp.fovs()]
    for fov in exp.fovs():
        assert_same_fov(open_fov(experiment_url, fov.name), fov, exp.codebook)


def test_view_equals_starfish_on_the_demo(experiment):
    assert_matches_starfish(str(experiment))
    assert_matches_starfish(experiment.as_uri())


def test_real_merfish_crop_with_fiducials_and_polyt():
    crop = REPO_ROOT.parent / "shared" / "data" / "merfish_merlin_crop"
    if not crop.is_dir():
        pytest.skip(f"the real MERFISH crop is not on this machine ({crop})")
    for name in ("experiment.json", "experiment_full.json"):
        assert_matches_starfish(str(crop / name))


def test_nested_collections_and_absolute_urls(experiment, tmp_path):
    """Collections within collections, members and tiles named by absolute URL and path."""
    copy = tmp_path / "exp"
    shutil.copytree(experiment.parent, copy)
    primary = json.loads((copy / "primary.json").read_text())
    names = sorted(primary["contents"])
    (copy / "groups").mkdir()
    groups = {"g1": names[:2], "g2": names[2:]}
    for group, members in groups.items():
        (copy / "groups" / f"{group}.json").write_text(json.dumps({
            "version": "0.1.0", "extras": None,
            # one member relative to the group's own folder, the others absolute
            "contents": {name: (f"../{primary['contents'][name]}" if i == 0
                                else (copy / primary["contents"][name]).as_uri())
                         for i, name in enumerate(members)},
        }))
    primary["contents"] = {group: f"groups/{group}.json" for group in groups}
    (copy / "primary.json").write_text(json.dumps(primary))
    dots = json.loads((copy / "dots.json").read_text())
    dots["contents"] = {name: str(copy / ref) for name, ref in dots["contents"].items()}  # absolute paths
    (copy / "dots.json").write_text(json.dumps(dots))
    first_tileset = copy / primary_tileset_name(experiment, names[0])
    doc = json.loads(first_tileset.read_text())
    for tile in doc["tiles"]:
        tile["file"] = (copy / tile["file"]).as_uri()  # tiles by absolute file:// URL
    first_tileset.write_text(json.dumps(doc))
    assert_matches_starfish(str(copy / "experiment.json"))


def primary_tileset_name(experiment: Path, fov: str) -> str:
    return json.loads((experiment.parent / "primary.json").read_text())["contents"][fov]


@contextmanager
def counting_s3_calls():
    """Every S3 call and every boto3 session made, whichever client or session makes it."""
    import boto3  # lazy: boto3 ~1 s
    from botocore.client import BaseClient  # lazy: botocore ~0.1-1 s

    calls: list[tuple[str, str]] = []
    sessions: list[int] = []
    real_call, real_session = BaseClient._make_api_call, boto3.session.Session.__init__

    def call(self, operation, params):
        calls.append((operation, params.get("Key", "")))
        return real_call(self, operation, params)

    def session(self, *args, **kwargs):
        sessions.append(1)
        return real_session(self, *args, **kwargs)

    with mock.patch.object(BaseClient, "_make_api_call", call), \
            mock.patch.object(boto3.session.Session, "__init__", session):
        yield calls, sessions


def test_s3_one_session_own_fov_only_and_cost_independent_of_size(moto_s3, experiment):
    moto_s3.create_bucket(Bucket="lab-data")
    widen_experiment(experiment, 4, "small")
    widen_experiment(experiment, 400, "large")
    upload_tree(moto_s3, experiment.parent, "lab-data", "exp")
    local = starfish_experiment(str(experiment))
    reads = {}
    for size in ("small", "large"):
        storage.s3_client.cache_clear()
        with counting_s3_calls() as (calls, sessions):
            view = open_fov(f"s3://lab-data/exp/{size}.json", "fov_00002")
        reads[size] = calls
        assert len(sessions) <= 1, f"{len(sessions)} boto3 sessions for one FOV"
        # fov_00002 is the third original FOV (sorted): its tile sets and tiles, and no other
        # FOV's but the tile sets of the collections' first members, read to see they are flat
        original, probe = sorted(FOV_NAMES)[2], sorted(FOV_NAMES)[0]
        keys = [key for _, key in calls]
        assert not [k for k in keys if k.endswith(".tiff") and f"-{original}-" not in k], keys
        assert not [k for k in keys if k.endswith(".json") and
                    any(f"-{o}.json" in k for o in FOV_NAMES if o not in (original, probe))], keys
        fov = local[original]
        # one tile set per image type (primary, dots, nuclei) + every tile
        assert sum(f"-{original}" in k for k in keys) == view.tiles + len(fov.image_types)
        assert view.codebook.identical(local.codebook)
        for image_type in fov.image_types:
            assert view.fov.get_image(image_type).xarray.values.tobytes() == \
                fov.get_image(image_type).xarray.values.tobytes()
    assert len(reads["small"]) == len(reads["large"])


def test_planning_reads_collections_not_every_fov(moto_s3, experiment):
    moto_s3.create_bucket(Bucket="lab-data")
    widen_experiment(experiment, 2000, "wide")
    upload_tree(moto_s3, experiment.parent, "lab-data", "exp")
    storage.s3_client.cache_clear()
    with counting_s3_calls() as (calls, sessions):
        names = plan("s3://lab-data/exp/wide.json")
    assert names == [f"fov_{i:05d}" for i in range(2000)]
    # experiment, codebook, 2 collections, the first member of each, the first FOV's 2 tile sets
    assert len(calls) <= 8, calls
    assert len(sessions) <= 1


class _CountingServer(http.server.ThreadingHTTPServer):
    connections = 0
    requests: list[str]

    def process_request(self, request, client_address):
        type(self).connections += 1
        super().process_request(request, client_address)


class _KeepAliveHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_experiment(experiment):
    server = _CountingServer(("127.0.0.1", 0),
                             functools.partial(_KeepAliveHandler, directory=str(experiment.parent)))
    server.requests = []
    _CountingServer.connections = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    storage.http_session.cache_clear()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/experiment.json"
    finally:
        server.shutdown()
        server.server_close()
        storage.http_session.cache_clear()


def test_https_experiment_through_one_keep_alive_session(http_experiment, experiment):
    server, url = http_experiment
    local = starfish_experiment(str(experiment))
    view = open_fov(url, "A1")
    assert_same_fov(view, local["A1"], local.codebook)
    assert len(server.requests) > 20  # documents and 17 tiles
    # kept alive: no more connections than parallel readers, not one per request
    assert _CountingServer.connections <= storage.MAX_POOL_CONNECTIONS < len(server.requests)


# --- what goes wrong is one line naming the FOV and the URL -----------------------------------

def damaged_copy(experiment: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "exp"
    shutil.copytree(experiment.parent, copy)
    return copy


def test_missing_fov_names_fov_and_experiment(experiment):
    with pytest.raises(ExperimentError, match=r"^FOV Z9 is not in experiment .*experiment.json"):
        open_fov(str(experiment), "Z9")


def test_missing_tile_set_document(experiment, tmp_path):
    copy = damaged_copy(experiment, tmp_path)
    (copy / primary_tileset_name(experiment, "A1")).unlink()
    with pytest.raises(ExperimentError, match=r"cannot open tile set of FOV A1 .*primary-A1.json"):
        open_fov(str(copy / "experiment.json"), "A1")
    open_fov(str(copy / "experiment.json"), "b_2")  # other FOVs are not touched


def test_missing_and_corrupt_tiles(experiment, tmp_path):
    copy = damaged_copy(experiment, tmp_path)
    tiles = json.loads((copy / primary_tileset_name(experiment, "A1")).read_text())["tiles"]
    (copy / tiles[3]["file"]).unlink()
    with pytest.raises(ExperimentError, match=r"cannot read tile .*" + tiles[3]["file"] + ": No such file"):
        open_fov(str(copy / "experiment.json"), "A1")
    shutil.copy(experiment.parent / tiles[3]["file"], copy / tiles[3]["file"])
    data = bytearray((copy / tiles[5]["file"]).read_bytes())
    data[-10] ^= 0xFF
    (copy / tiles[5]["file"]).write_bytes(bytes(data))
    with pytest.raises(ExperimentError, match=r"tile .*" + tiles[5]["file"] + " does not match the sha256"):
        open_fov(str(copy / "experiment.json"), "A1")


def test_duplicate_fov_key_in_a_collection_is_refused(experiment, tmp_path):
    copy = damaged_copy(experiment, tmp_path)
    text = (copy / "primary.json").read_text()
    first = text.index('"A1"')
    (copy / "primary.json").write_text(text[:first] + '"A1": "primary-b_2.json", ' + text[first:])
    with pytest.raises(ExperimentError, match=r"primary.json: .*'A1' appears twice"):
        list_fovs(str(copy / "experiment.json"))


def test_worker_error_is_one_line_naming_fov_and_url(experiment, tmp_path, capsys):
    copy = damaged_copy(experiment, tmp_path)
    manifest, url = new_run(str(copy / "experiment.json"), str(ISS_RECIPE), str(tmp_path / "results"), run_id="r1")
    (copy / primary_tileset_name(experiment, "b_2")).write_text("{ truncated")
    index = manifest.fovs.index("b_2")
    assert process_fov.main([], env={"RUN_MANIFEST_URL": url, "AWS_BATCH_JOB_ARRAY_INDEX": str(index)}) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("process-fov: error: FOV b_2: cannot open tile set of FOV b_2 ")
    assert str(copy / primary_tileset_name(experiment, "b_2")) in last and "JSONDecodeError" in last
