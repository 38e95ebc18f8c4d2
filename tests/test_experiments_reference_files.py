"""Fitted ground truth by value: a worker that cannot see the run directory (Ray
without a shared filesystem) gets the same files in a node-local copy and computes
the same row."""

import dataclasses

from manifold_lab.experiments.reference_files import LOCAL_COPY_PREFIX, ReferenceFiles
from manifold_lab.experiments.reports import to_jsonable
from manifold_lab.experiments.sweep import REFERENCE_DIR, plan_jobs, run_job
from test_image_kinds import idx_dir, tiny  # noqa: F401  (idx_dir is a fixture)


def test_the_origin_is_used_when_it_holds_the_same_bytes(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"\x00\x01weights")
    (tmp_path / "fits.json").write_text("{}")
    (tmp_path / ".fits.json.123.tmp").write_text("half")  # an interrupted write: not shipped
    shipped = ReferenceFiles.read(tmp_path)
    assert [name for name, _ in shipped.files] == ["a.pt", "fits.json"]
    assert shipped.folder(local_root=tmp_path / "node") == str(tmp_path)
    assert not (tmp_path / "node").exists()


def test_another_machine_gets_a_local_copy_written_once(tmp_path):
    src = tmp_path / "run" / "reference"
    src.mkdir(parents=True)
    (src / "a.pt").write_bytes(bytes(range(256)) * 100)
    (src / "fits.json").write_text('{"x": 1}')
    shipped = ReferenceFiles.read(src)
    elsewhere = dataclasses.replace(shipped, origin=str(tmp_path / "not-mounted" / "reference"))
    node = tmp_path / "node-tmp"
    folder = elsewhere.folder(local_root=node)
    assert folder == str(node / (LOCAL_COPY_PREFIX + shipped.digest))
    assert {p.name: p.read_bytes() for p in (node / folder).iterdir()} == \
        {p.name: p.read_bytes() for p in src.iterdir()}
    stamp = {p.name: p.stat().st_mtime_ns for p in (node / folder).iterdir()}
    assert elsewhere.folder(local_root=node) == folder  # reused, not rewritten
    assert {p.name: p.stat().st_mtime_ns for p in (node / folder).iterdir()} == stamp
    # A changed origin is not trusted either: its bytes differ from the shipped ones.
    (src / "a.pt").write_bytes(b"other")
    assert shipped.folder(local_root=node) == folder


def test_digest_depends_on_names_and_contents(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_bytes(b"12")
    (b / "x").write_bytes(b"13")
    assert ReferenceFiles.read(a).digest != ReferenceFiles.read(b).digest
    (b / "x").write_bytes(b"12")
    assert ReferenceFiles.read(a).digest == ReferenceFiles.read(b).digest
    (b / "y").write_bytes(b"")
    assert ReferenceFiles.read(a).digest != ReferenceFiles.read(b).digest


def test_a_job_without_the_run_directory_computes_the_same_row(tmp_path, idx_dir, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "node-tmp"))
    preset = tiny("fmnist", idx_dir)
    cache = tmp_path / "run" / REFERENCE_DIR
    preset.data.build(0, cache_dir=str(cache))
    job = next(j for j in plan_jobs(preset, 0) if j.regularizer != "none")
    here = run_job(preset, job, 0, "cpu", cache_dir=str(cache))
    shipped = dataclasses.replace(ReferenceFiles.read(cache), origin=str(tmp_path / "elsewhere"))
    there = run_job(preset, job, 0, "cpu", reference_files=shipped)
    for row in (here, there):
        row.pop("train_s"), row.pop("eval_s"), row.pop("train_cpu_s"), row.pop("eval_cpu_s")
    assert to_jsonable(there) == to_jsonable(here)  # every number identical (NaN -> None)
    assert not (tmp_path / "elsewhere").exists()
    assert (tmp_path / "node-tmp" / (LOCAL_COPY_PREFIX + shipped.digest)).is_dir()
