"""``stargan serve`` with a StarGAN v2 model folder, over a real uvicorn on loopback: the
controls it describes (domains, seeds, a reference upload), latent- and reference-guided
outputs checked against the StyleModel, every domain at once, and bad requests."""

from __future__ import annotations

import http.client
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="stargan serve needs: pip install 'stargan[serve]'")
pytest.importorskip("uvicorn", reason="stargan serve needs: pip install 'stargan[serve]'")

from stargan.data.faces import params_for, render  # noqa: E402
from stargan.images import center_crop_resize  # noqa: E402
from stargan.serve import create_app  # noqa: E402
from stargan.serve.loadtest import multipart  # noqa: E402
from stargan.serve.server import ServerThread  # noqa: E402
from stargan.stylemodel import StyleModel  # noqa: E402
from v2_helpers import DOMAINS, SIZE, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def v2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model().save_pretrained(tmp_path_factory.mktemp("serve-v2") / "v2-model")


@pytest.fixture(scope="module")
def server(v2_folder: Path):
    with ServerThread(create_app(v2_folder)) as s:
        yield s


def post(url: str, fields: dict[str, str], image: bytes, **files: bytes):
    body, content_type = multipart(fields, image, files=files)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("POST", "/api/translate", body=body, headers={"Content-Type": content_type})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def png(k: int, size: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(render(params_for(3, "test", k), size)).save(buf, format="PNG")
    return buf.getvalue()


def cells(data: bytes, n: int) -> list[np.ndarray]:
    grid = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert grid.shape == (SIZE + 4, n * (SIZE + 2) + 2, 3)
    return [grid[2 : 2 + SIZE, 2 + i * (SIZE + 2) : 2 + i * (SIZE + 2) + SIZE] for i in range(n)]


def model_input(image: bytes) -> Image.Image:
    return center_crop_resize(Image.open(io.BytesIO(image)).convert("RGB"), SIZE)


def test_describes_domains_seeds_and_reference(server) -> None:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", "/api/model")
    m = json.loads(conn.getresponse().read())
    conn.close()
    assert m["kind"] == "stargan-v2" and m["domains"] == list(DOMAINS)
    choice = m["datasets"][0]["controls"][0]
    assert [o["set"] for o in choice["options"]] == [{d: 1} for d in DOMAINS]
    assert [c["type"] for c in m["extra_controls"]] == ["seeds", "reference"]
    assert m["all_domains"] and m["align"]["label"].endswith("like CelebA-HQ")


def test_latent_guided_outputs_equal_the_style_model(server, v2_folder: Path) -> None:
    image = png(0)
    status, headers, data = post(server.url, {"target": '{"male": 1}', "seeds": "0,5"}, image)
    assert status == 200, data
    assert json.loads(headers["x-stargan-columns"]) == ["input", "male, seed 0", "male, seed 5"]
    x, *outs = cells(data, 3)
    assert np.array_equal(x, np.asarray(model_input(image)))
    model = StyleModel.from_pretrained(v2_folder)
    for seed, out in zip((0, 5), outs, strict=True):
        expected = model.latent(Image.fromarray(x), "male", seeds=[seed])
        assert np.array_equal(out, np.asarray(expected))


def test_reference_guided_and_every_domain(server, v2_folder: Path) -> None:
    image, ref = png(1), png(2)
    fields = {"target": '{"female": 1}', "seeds": "0"}
    status, headers, data = post(server.url, fields, image, reference=ref)
    assert status == 200, data
    assert json.loads(headers["x-stargan-columns"]) == ["input", "female, reference"]
    x, out = cells(data, 2)
    model = StyleModel.from_pretrained(v2_folder)
    expected = model.reference(Image.fromarray(x), model_input(ref), "female")
    assert np.array_equal(out, np.asarray(expected))
    status, headers, data = post(server.url, {"all_domains": "1", "seeds": "3"}, image)
    assert status == 200, data
    assert json.loads(headers["x-stargan-columns"]) == ["input", "female, seed 3", "male, seed 3"]


@pytest.mark.parametrize(
    ("fields", "files", "status", "message"),
    [
        ({"target": '{"mael": 1}'}, {}, 400, "unknown domain 'mael'"),
        ({"target": '{"male": 1, "female": 1}'}, {}, 400, "choose one target domain"),
        ({"target": '{"male": 1}', "seeds": "0-99"}, {}, 400, "at most 16 seeds"),
        ({"target": '{"male": 1}', "seeds": "x"}, {}, 400, "bad seeds 'x'"),
        ({"target": '{"male": 1}'}, {"reference": b"not a picture"}, 415, "the reference image:"),
        ({}, {}, 400, "no target: choose a domain"),
    ],
)
def test_bad_requests_are_named(server, fields, files, status, message) -> None:
    code, _, data = post(server.url, fields, png(0), **files)
    assert code == status and message in json.loads(data)["error"], data
