"""Tests of gan_notes.device_run (the prepared GPU command) and gan_notes.run_time (its
predictions): the command end to end in the smoke profile on the CPU, into a temporary
folder copied as the device tool copies it back; the copy-back rules; the time model."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_notes import device_run, provenance, run_time
from gan_notes.dcgan import dcgan_discriminator, dcgan_generator

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "notebooks" / "11_stacked_mnist.ipynb"


def _mnist_available() -> bool:
    from gan_notes.data import load_mnist
    from gan_notes.download import DataUnavailableError

    try:
        load_mnist("test", download=False)
        return True
    except DataUnavailableError:
        return False


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="module")
def device_out(tmp_path_factory):
    """Run the command as the device would (a fresh process, smoke, a tiny benchmark), then
    copy its output folder the way the device tool's copy-back does (cp -r)."""
    if not _mnist_available():
        if os.environ.get("CI") == "true":
            pytest.fail("MNIST's test split is needed (GAN_NOTES_DATA)")
        pytest.skip("MNIST's test split is not available (set GAN_NOTES_DATA)")
    root = tmp_path_factory.mktemp("device")
    out = root / "out"
    before = _sha(COMMITTED)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "gan_notes.device_run", str(out), "--profile", "smoke", "--bench-seconds", "0.5"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _sha(COMMITTED) == before, "the repository's notebook must not be touched"
    back = root / "back"
    shutil.copytree(out, back)
    return out, back, proc.stdout


def test_results_json_says_what_ran_where(device_out):
    out, back, stdout = device_out
    r = json.loads((back / "results.json").read_text())
    for key in ("device", "torch", "python", "profile", "date", "git_commit", "bench", "chapter", "prediction", "copy_back", "command_wall_s"):
        assert key in r, key
    assert r["profile"] == "smoke" and r["torch"] == torch.__version__
    assert r["stages_done"] == ["prediction", "chapter", "bench"]
    for shape in ("mnist_1x28x28", "stacked_mnist_3x28x28"):
        b = r["bench"][shape]
        assert b["eager"]["steps_per_s"] > 0 and b["optimised"]["steps_per_s"] > 0
        assert b["ratio"] == pytest.approx(b["optimised"]["steps_per_s"] / b["eager"]["steps_per_s"])
        assert b["eager"]["channels_last"] is False and b["optimised"]["channels_last"] is True
    assert r["bench"]["mnist_1x28x28"]["mnist_epoch_s"] > 0 and r["bench"]["stacked_mnist_3x28x28"]["protocol_run_min"] > 0
    assert r["chapter"]["wall_time_s"] > 0 and r["chapter"]["notebook"] == "11_stacked_mnist.ipynb"
    # On a CPU the prediction is for the assumed devices, and says that it is an assumption.
    for a in r["prediction"]["assumed"].values():
        assert a["predicted_s"] > 0 and "assumption" in a["source"]
    assert "ASSUMPTION" in stdout and "PREDICTED on NVIDIA H100" in stdout
    assert r["copy_back"] == {"ok": True, "problems": [], "files": r["copy_back"]["files"]}


def test_executed_notebook_records_smoke_and_has_no_errors(device_out):
    out, back, _ = device_out
    nb = json.loads((back / "11_stacked_mnist.ipynb").read_text())
    rec = nb["metadata"]["gan_notes"]
    assert rec["profile"] == "smoke"
    assert rec["source_hash"] == provenance.source_hash(nb)
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "PREDICTED time of the long cell" in text  # the chapter's own prediction, before the long cell
    assert "long cell:" in text


def test_output_folder_would_come_back_whole(device_out):
    out, back, _ = device_out
    files = [p for p in out.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["11_stacked_mnist.ipynb", "results.json"]
    assert len(files) <= 8
    for p in files:
        rel = p.relative_to(out)
        assert p.stat().st_size <= 16 * 2**20 and len(rel.parts) <= 3
        assert all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in rel.parts)
        assert (back / rel).read_bytes() == p.read_bytes()  # the copy is the output


def test_copy_back_problems_finds_each_violation(tmp_path):
    assert device_run.copy_back_problems(tmp_path) == []
    (tmp_path / "ok.json").write_text("{}")
    with open(tmp_path / "big.ipynb", "wb") as f:
        f.truncate(17 * 2**20)  # sparse: 17 MiB by its size, nothing on disk
    (tmp_path / "bad name.txt").write_text("x")
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("x")
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text("x")
    problems = "\n".join(device_run.copy_back_problems(tmp_path))
    assert "big.ipynb: 17.0 MiB" in problems
    assert "bad name.txt: name" in problems
    assert "folders deep" in problems and "a/b/c/f.txt" in problems
    assert "10 files, over the 8" in problems
    assert "ok.json" not in problems


def test_run_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(ValueError, match="must be empty"):
        device_run.run(tmp_path, "smoke")


def test_execute_output_must_be_a_notebook(tmp_path):
    with pytest.raises(ValueError, match="output must be a .ipynb"):
        provenance.execute(REPO / "notebooks" / "11_stacked_mnist.md", profile="smoke", output=tmp_path / "x.md")


def test_chapter_namespace_reads_both_branches():
    gpu = device_run.chapter_namespace(profile="full", on_gpu=True)
    cpu = device_run.chapter_namespace(profile="full", on_gpu=False)
    smoke = device_run.chapter_namespace(profile="smoke", on_gpu=True)
    assert gpu["WIDTH"] == 64 and gpu["BATCH"] == 64 and gpu["N_EVAL"] == 26_000
    assert cpu["WIDTH"] < gpu["WIDTH"] and smoke["STEPS"] < gpu["STEPS"]
    assert len(gpu["RUNS"]) == 7 and ("Unrolled-5", 0.25) in gpu["RUNS"]
    g, d, d2 = gpu["build"]("Two-D", 1.0)
    assert g.width == 64 and d2 is not None
    with pytest.raises(ValueError, match="profile"):
        device_run.chapter_namespace(profile="fast")


def test_predict_seconds_is_the_sum_over_runs():
    t = {"a": 0.01, "b": 0.03}
    # 3 seeds x (1000 steps x 0.01 s + 2 s  +  1000 x 0.03 + 2) + 5
    assert run_time.predict_seconds(t, 1000, repeats=3, per_run_s=2.0, fixed_s=5.0) == pytest.approx(3 * (12 + 32) + 5)
    assert run_time.predict_seconds({}, 10) == 0.0
    for bad in (dict(steps=-1), dict(steps=1.5)):
        with pytest.raises(ValueError, match="steps"):
            run_time.predict_seconds(t, **bad)
    with pytest.raises(ValueError, match="repeats"):
        run_time.predict_seconds(t, 10, repeats=0)
    with pytest.raises(ValueError, match="non-negative"):
        run_time.predict_seconds({"a": float("nan")}, 10)


def test_model_step_seconds_is_the_slower_of_host_and_device():
    m = run_time.DeviceModel("x", host_factor=2.0, flops_per_s=1e12, bf16=True, fixed_s=0.0, source="test")
    assert run_time.model_step_seconds(0.004, 1e9, m) == pytest.approx(0.008)  # host-bound: 2 x 4 ms > 1 ms
    assert run_time.model_step_seconds(0.0001, 1e10, m) == pytest.approx(0.01)  # device-bound
    with pytest.raises(ValueError):
        run_time.model_step_seconds(-1.0, 0.0, m)
    assert all("assumption" in d.source for d in run_time.ASSUMED_DEVICES.values())


def test_seconds_per_step_times_the_steps_after_warmup(one_thread):
    torch.manual_seed(0)
    g, d = dcgan_generator(1, latent_dim=8, width=4), dcgan_discriminator(1, width=4)
    data = torch.rand(32, 1, 28, 28) * 2 - 1
    t = run_time.seconds_per_step(g, d, data, steps=3, warmup=1, batch_size=4, device="cpu")
    assert 0 < t < 5
    with pytest.raises(ValueError, match="warmup"):
        run_time.seconds_per_step(g, d, data, steps=3, warmup=0)
