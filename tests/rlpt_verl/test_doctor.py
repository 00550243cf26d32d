import os
import subprocess
import sys


def doctor(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def test_doctor_passes_here_including_a_ray_worker():
    p = doctor()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "verl          0.9.1" in p.stdout
    assert "in a fresh python process: ok" in p.stdout
    assert "in a Ray worker process: ok" in p.stdout


def test_doctor_names_what_is_missing():
    p = doctor("--no-ray", VERL_USE_EXTERNAL_PLUGINS="none")
    assert p.returncode == 1
    assert "VERL_USE_EXTERNAL_PLUGINS='none' disables our plugin" in p.stderr
    assert "does not register reward manager(s) rlpt" in p.stderr
