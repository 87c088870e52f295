"""Test configuration: chapters run in the smoke profile unless told otherwise.

nbval starts each notebook's kernel from this process, so the environment set here reaches
the notebooks too.
"""

import os

os.environ.setdefault("GAN_NOTES_PROFILE", "smoke")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import contextlib  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_thread():
    """Toy networks on one torch thread: a second thread costs more in synchronisation than it
    saves, and far more when the cores are shared. Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def say(pytestconfig):
    """``say(line)`` prints outside pytest's output capture, so the line shows in every run."""

    def write(line: str) -> None:
        reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
        capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
        if reporter is not None:
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                reporter.write_line(line)

    return write
