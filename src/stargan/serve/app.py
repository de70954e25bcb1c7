"""The web app: one page and a small API over a model folder.

    GET  /                 the page (page.html: inline CSS and JS, nothing from the internet)
    GET  /api/model        the controls to draw, as JSON (kinds.py)
    GET  /api/sample/{k}   sample face k as PNG: the model folder's own ``samples/`` photos
                           (real faces, with their provenance in samples/README.md) when it
                           has them, else built-in rendered faces 0..7
    GET  /api/health       {"ok": true}
    POST /api/translate    multipart: image (file), target ("Blond_Hair=1,Male=0" or a JSON
                           object), all_domains, align, grid (0/1) -> PNG: one row, the model
                           input then each output (grid=0: the output alone); column names in
                           the X-Stargan-Columns header (a JSON list)

Every error is JSON ``{"error": "..."}`` with its status: 400 bad request, 413 too large (bytes
or pixels), 415 not an image, 422 no face found, 429 too many requests in progress from one
address (``max_per_client``), 503 busy. A refused request costs the server nothing lasting: it
answers the next one as before. Requests that are not valid HTTP (h11 refuses them before the
app sees them) get a JSON 400 too (server.JsonErrorH11Protocol).

Concurrency: the event loop only reads bodies and checks fields; decoding, alignment and the
networks run in a thread pool of ``workers`` threads. The model is shared read-only: eval mode,
no_grad, and every request builds its own tensors (instance norm uses each image's own
statistics, so nothing is batched or carried across requests), hence results cannot mix.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from stargan.align import CELEBA, MADE_UP_WARN, Frame, NoFaceError, align_photo, opencv
from stargan.bundled import first_line
from stargan.data.dataset import to_model_range, to_uint8
from stargan.data.faces import params_for, render
from stargan.errors import StarGANError
from stargan.images import MAX_PIXELS, center_crop_resize, make_grid, pil_to_uint8_tensor
from stargan.quantize import require_int8
from stargan.serve.kinds import KINDS, flag, kind_of
from stargan.serve.uploads import (
    FORMAT_NAMES,
    MAX_UNDRAFTED_PIXELS,
    MAX_UPLOAD_BYTES,
    UploadError,
    decode_image,
    release_memory,
)

log = logging.getLogger("stargan.serve")

N_SAMPLES = 8
SAMPLE_SUFFIXES = {".jpg", ".jpeg", ".png"}
MAX_SAMPLE_PIXELS = 4_000_000  # a model folder's own sample photos are small
SAMPLE_SIZE = (128, 256)  # samples are drawn at the model's size, at least 128 and at most 256
FORM_SLACK = 64 * 1024  # room in a request body for the form fields around the image
BIG_DECODE_PIXELS = 4_000_000  # after decoding more than this, return freed memory
# A request body must keep arriving: a client that stalls for BODY_IDLE_S, or whose body takes
# longer than BODY_BASE_S plus its size at BODY_MIN_RATE, gets a 408 and frees its slot.
BODY_IDLE_S, BODY_BASE_S, BODY_MIN_RATE = 5.0, 5.0, 256 * 1024
ACCEPT = "image/png,image/jpeg,image/webp,image/bmp,image/gif,image/tiff"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# OpenCV's CascadeClassifier is not safe to share between threads, and detection is a small
# part of a request: one detection at a time.
_DETECT_LOCK = threading.Lock()


def create_app(
    model_dir: str | Path,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    workers: int = 2,
    max_pending: int = 32,
    device: str = "cpu",
    int8: bool = False,
    precision: str = "auto",
    allowed_hosts: list[str] | None = None,
    body_idle_s: float = BODY_IDLE_S,
    max_per_client: int | None = None,
    max_receiving: int = 64,
) -> FastAPI:
    """The app for one model folder. ``workers``: translations run at once; ``max_pending``:
    requests whose upload has arrived accepted at once (more get 503); ``max_receiving``:
    uploads being received at once (more get 503 before their body is read; a body that
    stops arriving for ``body_idle_s`` seconds, or arrives slower than about 256 KB/s, is
    cut off with a 408): slow or stalled uploads never hold a translation slot, so good
    clients keep being served beside them; ``max_per_client``: requests
    accepted at once from one client address (more get 429; None: no per-client limit, right
    when every client shares one address, as on loopback or behind a proxy); ``int8``: G runs in
    int8 (CPU, x86 with VNNI; v1), calibrated at start on the built-in sample faces, as the
    page sends them, with every single-domain change; ``precision``: G's arithmetic
    otherwise (:mod:`stargan.inference_precision`; auto decides at the first request);
    ``allowed_hosts``: the Host header
    names answered (None: any; ``server.serve`` sets the loopback names when bound to
    loopback, against DNS rebinding)."""
    path = Path(model_dir)
    if int8:
        require_int8(device, path)  # v1 folder, CPU, VNNI: one error before any loading
    kind_name = kind_of(path)
    kind = KINDS[kind_name]
    model = kind.load(path, device, precision)
    # every inference class has these (model_folder): the size, crop and filter of training
    size, crop, resize_filter = model.image_size, model.crop, model.resize_filter
    seed = getattr(model, "meta", {}).get("data_seed", 0)
    sample_size = min(max(size, SAMPLE_SIZE[0]), SAMPLE_SIZE[1])
    samples = _own_samples(path) or [
        _sample_png(seed, k, sample_size) for k in range(N_SAMPLES)
    ]  # PNG bytes
    if int8:
        kind.quantize(model, _sample_inputs(samples, max_pixels, size, crop, resize_filter))
    # torch's intra-op thread count is per thread under OpenMP: the workers take this one's
    executor = ThreadPoolExecutor(
        workers,
        thread_name_prefix="stargan-serve",
        initializer=torch.set_num_threads,
        initargs=(torch.get_num_threads(),),
    )
    page, csp = _page()
    align_note = _align_note()
    description = {
        "kind": kind_name,
        "name": path.name,
        "image_size": size,
        "samples": len(samples),
        "samples_note": first_line(path / "samples" / "README.md"),
        "max_upload_bytes": max_upload_bytes,
        "max_pixels": max_pixels,
        "max_pixels_other": min(max_pixels, MAX_UNDRAFTED_PIXELS),
        "formats": FORMAT_NAMES,
        "accept": ACCEPT,
        "align": {
            "available": align_note is None,
            "note": align_note or "",
            "label": f"Find the face and align it like {kind.frame.title}",
        },
        **kind.describe(model),
    }
    pending = 0  # requests being answered (upload received); touched only on the event loop
    receiving = 0  # uploads being received now
    per_client: dict[str, int] = {}  # requests in progress (arriving or answered), by address

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    # no /docs: Swagger UI loads its scripts from a CDN, which a loopback tool cannot assume
    app = FastAPI(
        title="stargan serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.model, app.state.kind, app.state.executor = model, kind, executor

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if allowed_hosts is not None and _host(request) not in allowed_hosts:
            return _error(
                400,
                f"this server answers only to {', '.join(allowed_hosts)} (Host header "
                f"{request.headers.get('host', '')[:60]!r} refused: DNS rebinding guard)",
            )
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        return _error(err.status_code, str(err.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> Response:
        return _error(400, f"bad request: {err.errors()[0].get('msg', err)}")

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return HTMLResponse(page, headers={"Content-Security-Policy": csp})

    @app.get("/api/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api/model")
    async def describe() -> dict[str, Any]:
        return description

    @app.get("/api/sample/{k}")
    async def sample(k: str) -> Response:
        if not re.fullmatch(r"[0-9]", k) or int(k) >= len(samples):
            return _error(404, f"no sample {k[:20]!r}: samples are 0..{len(samples) - 1}")
        return Response(
            samples[int(k)], media_type="image/png", headers={"Cache-Control": "max-age=3600"}
        )

    decoding = threading.Lock()  # one decode at a time: a burst of small files that decode
    # big (16 MP PNGs) then costs one such image's memory, not one per worker

    def model_input(data: bytes, align: bool, what: str) -> tuple[torch.Tensor, list[str]]:
        """One upload as a uint8 model input [3, S, S] (aligned when asked), and warnings."""
        try:
            with decoding:
                photo = decode_image(data, max_pixels)
        except UploadError as err:  # say which upload, when there are several
            if what == "the photo":
                raise
            raise UploadError(err.status, f"{what}: {err}") from err
        if photo.width * photo.height > BIG_DECODE_PIXELS:
            release_memory()
        warnings: list[str] = []
        if align:
            face, warnings = _aligned(photo, size, crop, resize_filter, kind.frame, what)
        else:
            face = center_crop_resize(photo, size, crop, resize_filter)
        return pil_to_uint8_tensor(face), warnings

    def work(
        data: bytes, align: bool, req: Any, grid: bool, extra_data: dict[str, bytes]
    ) -> tuple[bytes, list[str], list[str]]:
        """One request's decoding and translation (a worker thread): the PNG, its column
        names and warnings for the user. ``extra_data``: the kind's other uploads (a v2
        reference image), prepared as the photo is."""
        x_u8, warnings = model_input(data, align, "the photo")
        x = to_model_range(x_u8[None]).to(device)  # [1, 3, S, S], this request's own
        extra = {}
        for name, blob in extra_data.items():
            extra_u8, notes = model_input(blob, align, f"the {name} image")
            extra[name] = to_model_range(extra_u8[None]).to(device)
            warnings += notes
        outputs = kind.outputs(model, x, req, extra)
        cells = [x_u8] + [to_uint8(y[0]).cpu() for _, y in outputs]
        names = ["input"] + [name for name, _ in outputs]
        if not grid and len(outputs) == 1:
            return _png(cells[1].permute(1, 2, 0).numpy()), names[1:], warnings
        return _png(make_grid(torch.stack(cells), nrow=len(cells))), names, warnings

    async def translate_request(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise UploadError(415, "send multipart/form-data with the photo in the field 'image'")
        body = await receive(request)
        nonlocal pending
        if pending >= max_pending:
            raise UploadError(503, f"server busy ({pending} requests in progress); try again soon")
        pending += 1
        try:
            return await answer(request, body)
        finally:
            pending -= 1

    async def receive(request: Request) -> bytes:
        nonlocal receiving
        receiving += 1
        try:
            return await _read_body(
                request, max_upload_bytes + FORM_SLACK, max_upload_bytes, body_idle_s
            )
        finally:
            receiving -= 1

    async def answer(request: Request, body: bytes) -> Response:
        form = await _form(request, body)
        try:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                raise UploadError(400, "no image: send the photo as the file field 'image'")
            data = await upload.read()
            extra_data = {}
            for name in kind.uploads:  # the kind's other image fields (v2: "reference")
                extra = form.get(name)
                if isinstance(extra, UploadFile):
                    extra_data[name] = await extra.read()
        finally:
            await form.close()
        if sum(len(d) for d in (data, *extra_data.values())) > max_upload_bytes:
            raise UploadError(413, _too_big(max_upload_bytes))
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        req = kind.parse(model, fields, set(extra_data))
        align = flag(fields, "align")
        if align and align_note:
            raise UploadError(400, align_note)
        grid = flag(fields, "grid") if "grid" in fields else True
        loop = asyncio.get_running_loop()
        png, names, warnings = await loop.run_in_executor(
            executor, work, data, align, req, grid, extra_data
        )
        return Response(
            png,
            media_type="image/png",
            headers={
                "X-Stargan-Columns": json.dumps(names),  # ASCII: json escapes the rest
                "X-Stargan-Warnings": json.dumps(warnings),
                "Content-Disposition": 'inline; filename="stargan-result.png"',
                "Cache-Control": "no-store",
            },
        )

    @app.post("/api/translate")
    async def translate(request: Request) -> Response:
        if receiving >= max_receiving:
            return _error(503, f"server busy ({receiving} uploads arriving); try again soon")
        client = request.client.host if request.client else ""
        mine = per_client.get(client, 0)
        if max_per_client is not None and mine >= max_per_client:
            return _error(
                429, f"{mine} requests from your address are in progress; wait for them to finish"
            )
        per_client[client] = mine + 1
        try:
            return await translate_request(request)
        except UploadError as err:
            return _error(err.status, str(err))
        except StarGANError as err:  # the model's own checks: unknown domains, mixed datasets
            return _error(400, str(err))
        except ClientDisconnect:  # the client left mid-upload: nobody to answer, nothing to log
            return _error(400, "the client disconnected during the upload")
        except Exception:  # one request's failure must not end the server
            log.exception("translate failed")
            return _error(500, "internal error while translating (see the server's log)")
        finally:
            per_client[client] -= 1
            if not per_client[client]:
                del per_client[client]

    return app


# ---------------------------------------------------------------------- helpers
def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "no-store"}
    )


def _too_big(limit: int) -> str:
    size = f"{limit / 2**20:.3g} MB" if limit >= 2**20 else f"{limit / 1024:.3g} KB"
    return f"upload too large: at most {size}"


async def _read_body(request: Request, limit: int, file_limit: int, idle_s: float) -> bytes:
    """The request body, refused (413) as soon as it is known to pass ``limit`` bytes: from
    Content-Length before reading anything, else while counting what arrives; cut off (408)
    when nothing arrives for ``idle_s`` seconds or the whole takes longer than
    BODY_BASE_S + size / BODY_MIN_RATE (slow-body attacks: slots are few)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise UploadError(400, "bad Content-Length header")
        if int(declared) > limit:
            raise UploadError(413, _too_big(file_limit))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BODY_BASE_S + int(declared or limit) / BODY_MIN_RATE
    body = bytearray()
    chunks = request.stream().__aiter__()
    while True:
        wait = min(idle_s, deadline - loop.time())
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(wait, 0.0))
        except StopAsyncIteration:
            return bytes(body)
        except asyncio.TimeoutError as err:  # TimeoutError from Python 3.11 on
            raise UploadError(408, "the upload stalled or came too slowly; send it again") from err
        body += chunk
        if len(body) > limit:
            raise UploadError(413, _too_big(file_limit))


async def _form(request: Request, body: bytes) -> FormData:
    """Starlette's multipart parser over a body already read (and counted)."""

    async def receive() -> Mapping[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, receive).form(
            max_files=2, max_fields=16, max_part_size=FORM_SLACK
        )
    except StarletteHTTPException as err:
        raise UploadError(400, f"malformed form data: {err.detail}") from err


def _host(request: Request) -> str:
    """The Host header's name, without the port (``[::1]:7860`` -> ``::1``)."""
    host = request.headers.get("host", "")
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _aligned(
    photo: Image.Image,
    size: int,
    crop: int,
    resize_filter: str,
    frame: Frame = CELEBA,
    what: str = "the photo",
) -> tuple[Image.Image, list[str]]:
    """The largest face of ``photo`` in the model's aligned layout (``frame``), as a model
    input, and a warning when much of that input lies outside the photo (made up)."""
    try:
        with _DETECT_LOCK:
            face = align_photo(photo, what, size, crop, resize_filter, frame=frame)[0]
    except NoFaceError as err:
        raise UploadError(
            422,
            f"no face found in {what} (try without face alignment, or a larger, frontal photo)",
        ) from err
    warnings = (
        [
            f"{face.made_up:.0%} of the model's input lies outside the photo and is made up "
            "(a photo with more room around the face does better)"
        ]
        if face.made_up > MADE_UP_WARN
        else []
    )
    return face.image, warnings


def _align_note() -> str | None:
    """None when face alignment can run, else why not."""
    try:
        opencv()
    except StarGANError as err:
        return str(err)
    return None


@cache
def _sample_png(seed: int, k: int, size: int) -> bytes:
    return _png(render(params_for(seed, "test", k), size))


def _own_samples(path: Path) -> list[bytes]:
    """The model folder's own sample photos (``samples/*.jpg|png``, sorted, at most
    N_SAMPLES) as PNG bytes; [] when it has none. Each is decoded with the upload checks."""
    folder = path / "samples"
    if not folder.is_dir():
        return []
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)
    photos = []
    for file in found[:N_SAMPLES]:
        try:
            photos.append(_png(np.asarray(decode_image(file.read_bytes(), MAX_SAMPLE_PIXELS))))
        except (OSError, UploadError) as err:
            raise StarGANError(f"sample photo {file} is unreadable: {err}") from err
    return photos


def _sample_inputs(
    samples: list[bytes], max_pixels: int, size: int, crop: int, resize_filter: str
) -> list[Image.Image]:
    """The sample faces as model inputs, as when the page sends one (no alignment)."""
    return [
        center_crop_resize(decode_image(png, max_pixels), size, crop, resize_filter)
        for png in samples
    ]


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def _page() -> tuple[str, str]:
    """page.html and its Content-Security-Policy: only its own inline script and style run
    (by their hashes), and it talks only to this server."""
    page = files("stargan.serve").joinpath("page.html").read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
            for b in blocks
        )

    csp = (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
        "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return page, csp
