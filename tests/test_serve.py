"""``stargan serve``: the app's API over a real uvicorn on loopback (stdlib HTTP client): the
controls it describes, translations checked against the Translator, every kind of bad upload,
concurrent requests, the host guard, the load-test helper."""

from __future__ import annotations

import http.client
import io
import json
import struct
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="stargan serve needs: pip install 'stargan[serve]'")
pytest.importorskip("uvicorn", reason="stargan serve needs: pip install 'stargan[serve]'")

from stargan.config import ModelConfig  # noqa: E402
from stargan.data.dataset import to_uint8  # noqa: E402
from stargan.data.faces import params_for, render  # noqa: E402
from stargan.data.joint import LabelLayout  # noqa: E402
from stargan.data.labels import LabelSpec  # noqa: E402
from stargan.errors import StarGANError  # noqa: E402
from stargan.images import center_crop_resize, to_rgb  # noqa: E402
from stargan.models.v1 import Discriminator, Generator  # noqa: E402
from stargan.serve import app as app_module  # noqa: E402
from stargan.serve import create_app, run  # noqa: E402
from stargan.serve.loadtest import load_test, multipart  # noqa: E402
from stargan.serve.server import ServerThread, bind, is_loopback  # noqa: E402
from stargan.translate import Translator  # noqa: E402

S = 16  # the tiny model's image size
UPLOAD_CAP = 200_000
CELEBA_FACE = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/celeba_subset/img_align_celeba/182664.jpg"
)  # bytes, small so the over-size case is cheap


# ---------------------------------------------------------------------- helpers
def call(
    url: str,
    path: str,
    fields: dict[str, str] | None = None,
    image: bytes | None = None,
    *,
    method: str = "POST",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, headers, body)."""
    parts = urlsplit(url)
    headers = dict(headers or {})
    if fields is not None or image is not None:
        body, headers["Content-Type"] = multipart(fields or {}, image)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def translate(url: str, image: bytes, **fields: str) -> tuple[int, dict[str, str], bytes]:
    return call(url, "/api/translate", fields, image)


def error_of(data: bytes) -> str:
    return json.loads(data)["error"]


def png(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(array)
    (im.convert(mode) if mode else im).save(buf, format=fmt)
    return buf.getvalue()


def face(k: int, size: int = 48) -> np.ndarray:
    return render(params_for(7, "test", k), size)


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def cells(grid: np.ndarray, n: int) -> list[np.ndarray]:
    """The n cells of a one-row grid of S px images with 2 px padding."""
    assert grid.shape == (S + 4, n * (S + 2) + 2, 3)
    return [grid[2 : 2 + S, 2 + i * (S + 2) : 2 + i * (S + 2) + S] for i in range(n)]


def model_input(image: bytes) -> np.ndarray:
    return np.asarray(center_crop_resize(to_rgb(Image.open(io.BytesIO(image))), S))


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims width x height RGB pixels (a decompression bomb's
    shape: the pixels would be decoded only after the size checks)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def tr(tiny_model: Path) -> Translator:
    return Translator.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def server(tiny_model: Path):
    with ServerThread(create_app(tiny_model, max_upload_bytes=UPLOAD_CAP, workers=4)) as s:
        yield s


def good_request_works(url: str) -> None:
    status, _, data = translate(url, png(face(0)), target="Male=1")
    assert status == 200 and data[:4] == b"\x89PNG"


# ---------------------------------------------------------------------- page and model
def test_page_is_served_with_a_strict_policy(server) -> None:
    status, headers, data = call(server.url, "/", method="GET")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = data.decode()
    assert "api/translate" in page and "https://" not in page  # nothing from the internet
    csp = headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert call(server.url, "/docs", method="GET")[0] == 404  # Swagger UI would need a CDN


def test_model_description_groups_exclusive_domains_as_radio_buttons(server) -> None:
    status, _, data = call(server.url, "/api/model", method="GET")
    m = json.loads(data)
    assert status == 200 and m["kind"] == "stargan-v1" and m["image_size"] == S
    assert m["max_upload_bytes"] == UPLOAD_CAP and m["all_domains"] and m["keeps_own_labels"]
    assert m["extra_controls"] == []
    assert m["about"].startswith(f"model: trained on faces-attr at {S} px (built-in rendered")
    [dataset] = m["datasets"]
    hair, *toggles = dataset["controls"]
    assert (hair["type"], hair["style"], hair["label"], hair["default"]) == (
        "choice",
        "radio",
        "Hair",
        "keep",
    )
    assert {o["value"]: o["set"] for o in hair["options"]} == {
        "keep": {},
        "Black_Hair": {"Black_Hair": 1},
        "Blond_Hair": {"Blond_Hair": 1},
        "Brown_Hair": {"Brown_Hair": 1},
        "none": {"Black_Hair": 0, "Blond_Hair": 0, "Brown_Hair": 0},
    }
    assert [(c["label"], c["style"]) for c in toggles] == [("Male", "toggle"), ("Young", "toggle")]
    assert {o["value"]: o["set"] for o in toggles[0]["options"]} == {
        "keep": {},
        "0": {"Male": 0},
        "1": {"Male": 1},
    }


def test_samples(server) -> None:
    status, headers, data = call(server.url, "/api/sample/3", method="GET")
    assert status == 200 and headers["content-type"] == "image/png"
    assert decode(data).shape == (128, 128, 3)  # at least 128 px, whatever the model's size
    assert not np.array_equal(
        decode(data), decode(call(server.url, "/api/sample/4", method="GET")[2])
    )
    for k in ("8", "-1", "x", "00"):
        status, _, data = call(server.url, f"/api/sample/{k}", method="GET")
        assert status == 404 and "samples are 0..7" in error_of(data)


def test_a_model_folder_s_own_samples_replace_the_built_in_faces(tiny_model, tmp_path) -> None:
    """A folder with samples/ (real photos, as the bundled models ship) serves those, in
    name order, with the provenance line of samples/README.md in /api/model."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    (folder / "samples").mkdir()
    photos = [face(k, 40) for k in (5, 6, 7)]
    for k, photo in enumerate(photos):
        Image.fromarray(photo).save(folder / "samples" / f"{k:02d}.png")
    (folder / "samples" / "README.md").write_text("\n# CelebA test partition, 3 faces\nmore\n")
    (folder / "samples" / "notes.txt").write_text("not a photo")
    with ServerThread(create_app(folder)) as s:
        described = json.loads(call(s.url, "/api/model", method="GET")[2])
        assert described["samples"] == 3
        assert described["samples_note"] == "CelebA test partition, 3 faces"
        for k, photo in enumerate(photos):
            status, _, data = call(s.url, f"/api/sample/{k}", method="GET")
            assert status == 200 and np.array_equal(decode(data), photo)
        status, _, data = call(s.url, "/api/sample/3", method="GET")
        assert status == 404 and "samples are 0..2" in error_of(data)


# ---------------------------------------------------------------------- translation
def test_translate_returns_the_translators_result(server, tr: Translator) -> None:
    image = png(face(1))
    status, headers, data = translate(server.url, image, target='{"Blond_Hair": 1, "Male": 0}')
    assert status == 200 and headers["content-type"] == "image/png"
    assert json.loads(headers["x-stargan-columns"]) == ["input", "Blond_Hair=1,Male=0"]
    x, y = cells(decode(data), 2)
    assert np.array_equal(x, model_input(image))
    expected = np.asarray(tr.translate(Image.fromarray(x), "Blond_Hair=1,Male=0"))
    assert np.array_equal(y, expected)
    assert np.abs(y.astype(int) - x).mean() > 5  # the output is not the input
    # the same target as "A=1,B=0" text, and the output alone (grid=0)
    status, headers, single = translate(server.url, image, target="Blond_Hair=1,Male=0", grid="0")
    assert status == 200 and json.loads(headers["x-stargan-columns"]) == ["Blond_Hair=1,Male=0"]
    assert np.array_equal(decode(single), expected)


def test_all_domains_grid(server, tr: Translator) -> None:
    image = png(face(2))
    status, headers, data = translate(server.url, image, all_domains="1")
    assert status == 200
    names = json.loads(headers["x-stargan-columns"])
    assert names == ["input", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    got = cells(decode(data), len(names))
    x = tr.preprocess(torch.from_numpy(got[0].copy()).permute(2, 0, 1)[None])
    for (name, y), cell in zip(tr.all_domains(x), got[1:], strict=True):
        assert np.array_equal(cell, to_uint8(y[0]).permute(1, 2, 0).numpy()), name


@pytest.mark.parametrize(
    "encode",
    [
        lambda a: png(a),
        lambda a: png(a, "JPEG"),
        lambda a: png(a, "WEBP"),
        lambda a: png(a, "BMP"),
        lambda a: png(a, "GIF"),
        lambda a: png(a, "TIFF"),
        lambda a: png(a, "PNG", "RGBA"),
        lambda a: png(a, "PNG", "L"),
    ],
    ids=["png", "jpeg", "webp", "bmp", "gif", "tiff", "rgba", "gray"],
)
def test_image_formats_accepted(server, encode) -> None:
    status, _, data = translate(server.url, encode(face(3)), target="Young=0")
    assert status == 200, data


# ---------------------------------------------------------------------- bad uploads
def _ico() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(face(0)).save(buf, format="ICO")
    return buf.getvalue()


GOOD = png(face(4))
BAD_UPLOADS = {
    "text file named .png": (b"just some text, not a picture\n", {}, 415, "not an image"),
    "unsupported format (ICO)": (_ico(), {}, 415, "PNG, JPEG, WebP, BMP, GIF or TIFF expected"),
    "empty file": (b"", {}, 400, "the uploaded file is empty"),
    "truncated PNG": (GOOD[: len(GOOD) // 2], {}, 400, "truncated or corrupt"),
    "81 MP header": (png_header(9000, 9000), {}, 413, "9000x9000 pixels (81.0 MP); at most 64 MP"),
    "63 MP PNG (small file, big decode)": (
        png_header(9000, 7000),
        {},
        413,
        "9000x7000 pixels (63.0 MP); at most 16 MP for PNG (JPEG: 64 MP)",
    ),
    "900 MP bomb": (png_header(30000, 30000), {}, 413, "image too large: at most 64 MP"),
    "file over the byte cap": (GOOD + bytes(UPLOAD_CAP), {}, 413, "upload too large: at most"),
    "body far over the cap": (bytes(3 * UPLOAD_CAP), {}, 413, "upload too large: at most"),
    "unknown attribute": (GOOD, {"target": "Blnd_Hair=1"}, 400, "unknown domain 'Blnd_Hair'"),
    "bad value": (GOOD, {"target": "Male=2"}, 400, "must be 0 or 1"),
    "bad JSON": (GOOD, {"target": '{"Male": '}, 400, "not valid JSON"),
    "JSON value out of range": (GOOD, {"target": '{"Male": 3}'}, 400, "number in [0, 1]"),
    "no target": (GOOD, {"target": ""}, 400, "no target: choose at least one attribute"),
    "bad flag": (GOOD, {"target": "Male=1", "align": "maybe"}, 400, "'align' must be 0 or 1"),
    "no image": (None, {"target": "Male=1"}, 400, "no image"),
    "two hair colours": (
        GOOD,
        {"target": "Blond_Hair=1,Black_Hair=1"},
        400,
        "Blond_Hair and Black_Hair cannot both be 1",
    ),
    "a name twice": (GOOD, {"target": "Male=1,Male=0"}, 400, "'Male' is given twice"),
    "a JSON key twice": (GOOD, {"target": '{"Male": 1, "Male": 0}'}, 400, "given twice"),
    "two hair colours (JSON)": (
        GOOD,
        {"target": '{"Brown_Hair": 1, "Blond_Hair": 1}'},
        400,
        "cannot both be 1",
    ),
    "JSON nested 5,000 deep": (GOOD, {"target": '{"a":' * 5000}, 400, "nested too deeply"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS), ids=list(BAD_UPLOADS))
def test_bad_uploads_get_clear_errors_and_the_server_goes_on(server, case: str) -> None:
    data, fields, status, message = BAD_UPLOADS[case]
    fields = {"target": "Male=1", **fields}
    got, headers, body = translate(server.url, data, **fields)
    assert got == status and message in error_of(body), body
    assert headers["content-type"] == "application/json"
    good_request_works(server.url)


def test_requests_that_are_not_multipart(server) -> None:
    status, _, body = call(
        server.url,
        "/api/translate",
        body=b'{"image": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert status == 415 and "multipart/form-data" in error_of(body)
    status, _, body = call(
        server.url,
        "/api/translate",
        body=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert status in (400, 415) and error_of(body)
    good_request_works(server.url)


def test_an_over_size_body_without_content_length_is_cut_off(server) -> None:
    """Chunked uploads announce no size: the server counts what arrives."""
    body, ctype = multipart({"target": "Male=1"}, bytes(3 * UPLOAD_CAP))
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    try:
        conn.request(
            "POST",
            "/api/translate",
            body=chunks,
            headers={"Content-Type": ctype},
            encode_chunked=True,
        )
        r = conn.getresponse()
        assert r.status == 413 and "upload too large" in error_of(r.read())
    finally:
        conn.close()
    good_request_works(server.url)


# ---------------------------------------------------------------------- concurrency
def test_concurrent_requests_do_not_mix(server) -> None:
    """8 requests at once, each its own input and target, equal bit for bit to the same
    requests made one at a time; each grid shows its own input."""
    targets = ["Blond_Hair=1", "Male=1", "Young=0", "Black_Hair=1,Male=0", "Brown_Hair=1"]
    jobs = [(png(face(k, 32 + 4 * k)), targets[k % len(targets)]) for k in range(8)]
    results: list[bytes | None] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def send(i: int) -> None:
        barrier.wait()
        status, _, results[i] = translate(server.url, jobs[i][0], target=jobs[i][1])
        assert status == 200

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    serial = [translate(server.url, image, target=target)[2] for image, target in jobs]
    assert results == serial
    grids = [decode(r) for r in results]
    for (image, _), grid in zip(jobs, grids, strict=True):
        assert np.array_equal(cells(grid, 2)[0], model_input(image))
    assert len({g.tobytes() for g in grids}) == len(jobs)


def test_load_test_helper(server) -> None:
    report = load_test(server.url, png(face(5)), "Male=0", clients=2, requests=6, warmup=1)
    assert (report["ok"], report["errors"]) == (6, 0)
    assert (
        0
        < report["latency_ms"]["p50"]
        <= report["latency_ms"]["p95"]
        <= report["latency_ms"]["max"]
    )
    assert report["requests_per_s"] > 0
    with pytest.raises(StarGANError, match="loopback only"):
        load_test("http://192.0.2.1:7860", b"", "Male=1")  # refused before any traffic


def _stall(url: str, n: int, length: int = 1000000) -> list:
    """``n`` connections that each send 1 KB of a ``length``-byte upload and stall."""
    import socket

    parts = urlsplit(url)
    head = (
        f"POST /api/translate HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {length}\r\n\r\n"
    )
    stalled = [socket.create_connection((parts.hostname, parts.port)) for _ in range(n)]
    for sock in stalled:
        sock.sendall(head.encode() + b"x" * 1024)
    time.sleep(0.3)  # the stalled uploads are in progress
    return stalled


def test_stalled_uploads_hold_no_translation_slot_and_are_cut_off(tiny_model: Path) -> None:
    """Clients that send a little of a large declared body and stall (a slow-body attack)
    take upload slots, not the slots of requests being answered: good clients are served
    beside them, and each stalled upload is cut off with a 408 at the idle limit."""
    with ServerThread(create_app(tiny_model, max_pending=3, body_idle_s=3.0)) as s:
        stalled = _stall(s.url, 6)
        try:
            for _ in range(3):
                assert translate(s.url, png(face(0)), target="Male=1")[0] == 200
            for sock in stalled:
                sock.settimeout(10)  # the idle limit (3 s) cuts each off with a 408
                status_line = sock.recv(4096).split(b"\r\n")[0]
                assert b" 408 " in status_line, status_line
        finally:
            for sock in stalled:
                sock.close()


def test_an_upload_abandoned_midway_frees_its_slot_without_a_traceback(tiny_model, caplog) -> None:
    with ServerThread(create_app(tiny_model, max_receiving=1, body_idle_s=30.0)) as s:
        with caplog.at_level("ERROR", logger="stargan.serve"):
            for sock in _stall(s.url, 1):
                sock.close()
            deadline, status = time.monotonic() + 5.0, 503
            while status == 503 and time.monotonic() < deadline:
                time.sleep(0.2)
                status = translate(s.url, png(face(0)), target="Male=1")[0]
        assert status == 200  # freed long before the 30 s idle limit
    assert not [r for r in caplog.records if r.name == "stargan.serve"]


def test_upload_slots_are_bounded(tiny_model: Path) -> None:
    app = create_app(tiny_model, max_receiving=2, body_idle_s=2.0)
    with ServerThread(app) as s:
        stalled = _stall(s.url, 2)
        try:
            status, _, body = translate(s.url, png(face(0)), target="Male=1")
            assert status == 503 and "uploads arriving" in error_of(body)
        finally:
            for sock in stalled:
                sock.close()
        deadline, status = time.monotonic() + 5.0, 503  # closed uploads free their slots
        while status == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            status = translate(s.url, png(face(0)), target="Male=1")[0]
        assert status == 200


def test_one_client_cannot_take_every_slot(tiny_model: Path) -> None:
    """With a per-client limit, an address holding its share of slots gets 429 for more,
    while the server still has room for others (here: the same address once it is freed)."""
    import socket

    app = create_app(tiny_model, max_pending=8, max_per_client=1, body_idle_s=2.0)
    with ServerThread(app) as s:
        parts = urlsplit(s.url)
        head = (
            f"POST /api/translate HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
        )
        with socket.create_connection((parts.hostname, parts.port)) as stalled:
            stalled.sendall(head.encode() + b"x" * 1024)
            time.sleep(0.3)  # the stalled request is in progress
            status, _, body = translate(s.url, png(face(0)), target="Male=1")
            assert status == 429 and "your address" in error_of(body)
            stalled.settimeout(10)
            assert b" 408 " in stalled.recv(4096).split(b"\r\n")[0]
        assert translate(s.url, png(face(0)), target="Male=1")[0] == 200


def test_malformed_http_gets_a_json_400(server) -> None:
    """h11 refuses a non-numeric Content-Length before the app sees it: still JSON."""
    import socket

    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST /api/translate HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Length: abc\r\n\r\n".encode()
        )
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/json" in head.lower()
    assert "malformed HTTP request" in json.loads(body)["error"]
    good_request_works(server.url)


def test_busy_server_says_so(tiny_model: Path) -> None:
    with ServerThread(create_app(tiny_model, max_pending=0)) as s:
        status, _, body = translate(s.url, png(face(0)), target="Male=1")
    assert status == 503 and "busy" in error_of(body)


# ---------------------------------------------------------------------- other models
@pytest.fixture(scope="module")
def joint_model(tmp_path_factory) -> Path:
    layout = LabelLayout(
        ("faces", "expr"),
        (
            LabelSpec(
                ("Black_Hair", "Blond_Hair", "Male"), "multi", (("Black_Hair", "Blond_Hair"),)
            ),
            LabelSpec(("happy", "sad", "neutral"), "categorical"),
        ),
    )
    cfg = ModelConfig(
        image_size=S,
        c_dim=layout.cls_dim,
        mask_dim=layout.mask_dim,
        g_conv_dim=8,
        g_repeat_num=1,
        d_conv_dim=8,
        d_repeat_num=2,
    )
    torch.manual_seed(0)
    G = Generator(layout.dim, cfg.g_conv_dim, cfg.g_repeat_num)
    D = Discriminator(S, layout.cls_dim, cfg.d_conv_dim, cfg.d_repeat_num)
    return Translator(G, cfg, layout, D, {"crop": 0}).save_pretrained(
        tmp_path_factory.mktemp("joint") / "m"
    )


def test_photos_are_resized_with_the_models_filter(tmp_path: Path) -> None:
    """A model whose data were resized bilinear (the paper presets, imported official
    models) gets its uploads resized bilinear too; the page's input cell shows it."""
    spec = LabelSpec(("Black_Hair", "Blond_Hair", "Male"), "multi", (("Black_Hair", "Blond_Hair"),))
    cfg = ModelConfig(
        image_size=S, c_dim=3, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2
    )
    torch.manual_seed(0)
    G, D = Generator(3, 8, 1), Discriminator(S, 3, 8, 2)
    meta = {"crop": 0, "resize_filter": "bilinear"}
    folder = Translator(G, cfg, spec, D, meta).save_pretrained(tmp_path / "bilinear")
    photo = np.random.default_rng(0).integers(0, 256, (40, 52, 3), np.uint8)  # centre: x 6-46
    with ServerThread(create_app(folder)) as s:
        status, _, body = translate(s.url, png(photo), target="Male=1")
    assert status == 200
    x, _ = cells(decode(body), 2)
    square = Image.fromarray(photo).crop((6, 0, 46, 40))
    np.testing.assert_array_equal(x, np.asarray(square.resize((S, S), Image.BILINEAR)))
    assert not np.array_equal(x, np.asarray(square.resize((S, S), Image.BICUBIC)))


def test_joint_model_shows_every_dataset(joint_model: Path) -> None:
    with ServerThread(create_app(joint_model)) as s:
        m = json.loads(call(s.url, "/api/model", method="GET")[2])
        assert [d["title"] for d in m["datasets"]] == ["faces", "expr"]
        faces, expr = m["datasets"]
        assert faces["controls"][0]["options"][2]["set"] == {"faces.Blond_Hair": 1}
        [classes] = expr["controls"]
        assert classes["style"] == "radio" and classes["default"] is None  # no "keep"
        assert [o["set"] for o in classes["options"]] == [
            {"expr.happy": 1},
            {"expr.sad": 1},
            {"expr.neutral": 1},
        ]
        status, headers, _ = translate(s.url, png(face(0)), target='{"expr.happy": 1}')
        assert status == 200 and json.loads(headers["x-stargan-columns"])[1] == "expr.happy=1"
        status, _, body = translate(s.url, png(face(0)), target='{"faces.Male": 1, "expr.sad": 1}')
        assert status == 400 and "mixes faces, expr" in error_of(body)


def test_model_without_discriminator_needs_a_full_target(tr: Translator, tmp_path: Path) -> None:
    folder = tr.save_pretrained(tmp_path / "no-d", with_discriminator=False)
    with ServerThread(create_app(folder)) as s:
        m = json.loads(call(s.url, "/api/model", method="GET")[2])
        assert not m["all_domains"] and not m["keeps_own_labels"]
        for control in m["datasets"][0]["controls"]:
            assert "keep" not in [o["value"] for o in control["options"]]
        status, _, body = translate(s.url, png(face(0)), target="Blond_Hair=1,Male=1")
        assert status == 400 and "missing: Young" in error_of(body)
        status, _, body = translate(s.url, png(face(0)), all_domains="1")
        assert status == 400 and "cannot estimate" in error_of(body)
        full = "Blond_Hair=1,Male=1,Young=0"
        status, _, body = translate(s.url, png(face(0)), target=full)
    assert status == 200
    x, y = cells(decode(body), 2)
    c = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0]])
    assert np.array_equal(y, tr.translate(x[None], c)[0])  # exactly the labels asked for


# ---------------------------------------------------------------------- face alignment
def test_align_finds_the_face_or_says_none_was_found(server) -> None:
    pytest.importorskip("cv2", reason="face alignment needs OpenCV")
    if CELEBA_FACE.exists():  # a real face, off-centre on a larger photo
        photo = Image.new("RGB", (400, 300), (90, 120, 150))
        photo.paste(Image.open(CELEBA_FACE), (200, 40))
        image = png(np.asarray(photo))
        status, headers, body = translate(server.url, image, target="Male=1", align="1")
        assert status == 200 and json.loads(headers["x-stargan-warnings"]) == []  # room around
        aligned = cells(decode(body), 2)[0]
        assert np.abs(aligned.astype(int) - model_input(image)).mean() > 10  # not the centre crop
        tight = png(np.asarray(Image.open(CELEBA_FACE).crop((30, 60, 148, 190))))
        status, headers, _ = translate(server.url, tight, target="Male=1", align="1")
        (warning,) = json.loads(headers["x-stargan-warnings"])
        assert status == 200 and "outside the photo and is made up" in warning
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    status, _, body = translate(server.url, png(noise), target="Male=1", align="1")
    assert status == 422 and "no face found" in error_of(body)


def test_align_without_opencv_is_disabled(tiny_model: Path, monkeypatch) -> None:
    monkeypatch.setattr(app_module, "_align_note", lambda: "face alignment needs OpenCV")
    with ServerThread(create_app(tiny_model)) as s:
        m = json.loads(call(s.url, "/api/model", method="GET")[2])
        assert m["align"] == {
            "available": False,
            "note": "face alignment needs OpenCV",
            "label": "Find the face and align it like CelebA",
        }
        status, _, body = translate(s.url, png(face(0)), target="Male=1", align="1")
    assert status == 400 and error_of(body) == "face alignment needs OpenCV"


# ---------------------------------------------------------------------- hosts and binding
def test_host_guard_refuses_other_names(tiny_model: Path) -> None:
    app = create_app(tiny_model, allowed_hosts=["127.0.0.1", "localhost", "::1"])
    with ServerThread(app) as s:
        port = urlsplit(s.url).port
        for host, status in [
            (f"localhost:{port}", 200),
            (f"127.0.0.1:{port}", 200),
            (f"[::1]:{port}", 200),
            (f"attacker.example:{port}", 400),
            ("127.0.0.1.attacker.example", 400),
        ]:
            got, _, body = call(s.url, "/api/model", method="GET", headers={"Host": host})
            assert got == status, (host, body)
        assert "DNS rebinding" in error_of(body)


def test_binding(monkeypatch) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(StarGANError, match="choose another with --port"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n: None if n == "fastapi" else real(n))
    with pytest.raises(StarGANError, match=r"pip install 'stargan\[serve\]' \(missing: fastapi\)"):
        run("unused")


def test_serve_command_answers_on_loopback_and_stops_on_sigterm(tiny_model, tmp_path) -> None:
    import re
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "stargan", "serve", str(tiny_model), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert url, line + proc.stderr.read()
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(url.group(1) + "/api/model", timeout=5) as resp:
                    assert resp.status == 200 and b"Blond_Hair" in resp.read()
                    break
            except OSError:
                assert time.time() < deadline, "server did not answer"
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_serve_command_refuses_a_missing_model(tmp_path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "stargan", "serve", str(tmp_path / "nope"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "nope" in lines[0], done.stderr
