"""Form and multipart bodies, parsed while they stream, with a size cap.

An upload over the cap is refused as soon as the cap is crossed (or at once, when
``Content-Length`` already says so): it is never held in memory whole. Parts larger than
1 MiB spool to a temporary file, as Starlette does; close the form when done.

A multipart body cut off before its closing delimiter is malformed. Starlette's parser would
leave the temporary file of the unfinished part open, so the delimiter is supplied to the
parser (which then closes everything) and the body is refused.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from simulator.kit.errors import ProviderError

__all__ = ["read_form", "read_upload"]


async def read_form(
    request: Request,
    *,
    max_bytes: int,
    too_large: Callable[[], ProviderError],
    malformed: Callable[[str], ProviderError],
    max_fields: int = 100,
) -> FormData:
    """Parse a multipart or urlencoded body of at most ``max_bytes``.

    Any other content type gives an empty form, as Starlette's ``request.form()`` does.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large()

    media, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary", b"")
    closing = b"--" + boundary + b"--"
    cut_off = False

    async def limited() -> AsyncGenerator[bytes, None]:
        nonlocal cut_off
        seen = 0
        tail = b""
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_bytes:
                raise too_large()
            tail = (tail + chunk)[-(len(closing) + 64) :]
            yield chunk
        if media == b"multipart/form-data" and boundary and closing not in tail:
            cut_off = True
            yield b"\r\n" + closing + b"\r\n"

    try:
        if media == b"multipart/form-data":
            parser = MultiPartParser(
                request.headers, limited(), max_files=max_fields, max_fields=max_fields
            )
            form = await parser.parse()
            if cut_off:
                await form.close()
                raise malformed("the closing boundary is missing")
            return form
        if media == b"application/x-www-form-urlencoded":
            return await FormParser(request.headers, limited()).parse()
    except MultiPartException as exc:
        raise malformed(exc.message) from None
    return FormData()


async def read_upload(
    upload: UploadFile, max_bytes: int, too_large: Callable[[], ProviderError]
) -> bytes:
    """The whole content of an uploaded part, refused once it passes ``max_bytes``."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large()
    return data
