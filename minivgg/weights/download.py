"""Downloading a large file so that a dropped connection costs nothing and a damaged file is never used.

``download(url, path, sha256=...)`` streams ``url`` into ``path + ".partial"`` with a tqdm bar. When that file
already holds the first n bytes (an earlier download was cut off), it asks the server for the rest with an
HTTP ``Range: bytes=n-`` header and appends; a server that answers with the whole file instead (status 200
rather than 206) is read from the start again. When every byte has arrived, the file's SHA-256 is compared
with the expected digest (all 64 hex digits, or the leading digits that torchvision's file names carry), and
only a file that matches is renamed onto ``path`` (one ``os.replace``, so ``path`` is either absent or
complete and checked). A file that does not match stays under its ``.partial`` name, is never used, and
is replaced by the next call.

This is what ``torch.hub.download_url_to_file`` and ``keras.utils.get_file`` do, plus resuming: theirs
start again from zero after an interruption, and a VGG file is half a gigabyte.
"""
import hashlib
import http.client
import os
import urllib.error
import urllib.request

from ..errors import WriteError

__all__ = ["DownloadError", "ChecksumError", "download", "sha256_of", "checked_digest"]

CHUNK = 1 << 20  # bytes read from the connection and hashed at a time


class DownloadError(ConnectionError):
    """The file could not be fetched (offline, refused, cut off, HTTP error); what arrived is kept."""


class ChecksumError(ValueError):
    """Every byte arrived, but the file's SHA-256 is not the published one; the file is not used."""


def sha256_of(path):
    """The SHA-256 of a file, as 64 lowercase hex digits, read ``CHUNK`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_digest(sha256):
    """``sha256`` in lowercase if it is 1 to 64 hex digits (a digest or a prefix of one); ValueError if not."""
    text = str(sha256).strip().lower()
    if not 1 <= len(text) <= 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"a SHA-256 is up to 64 hex digits (a leading prefix is checked as a prefix), got "
                         f"{sha256!r}")
    return text


def _check_digest(path, sha256, what):
    """Raise ChecksumError unless ``path``'s SHA-256 starts with ``sha256`` (a full digest or a prefix)."""
    if sha256 is None:
        return
    expected = checked_digest(sha256)
    found = sha256_of(path)
    if not found.startswith(expected):
        kind = "SHA-256" if len(expected) == 64 else f"SHA-256 prefix ({len(expected)} hex digits)"
        raise ChecksumError(f"{what}: the downloaded file's SHA-256 is {found}, but the expected {kind} is "
                            f"{expected}; the file is corrupt or not the published one. It was not used and "
                            f"stays at {path}; the next call downloads it again")


def _total_size(response, already):
    """The complete file's size from a 200's Content-Length or a 206's Content-Range, or None if unknown."""
    content_range = response.headers.get("Content-Range")
    if response.status == 206 and content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length) + (already if response.status == 206 else 0)
    return None


def _open(url, start, timeout):
    """The server's response for ``url`` from byte ``start`` on (a Range request when ``start`` > 0)."""
    request = urllib.request.Request(url, headers={"User-Agent": "minivgg"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)


def download(url, path, sha256=None, progress=True, timeout=60):
    """Fetch ``url`` into ``path``, resuming an interrupted download and checking the SHA-256.

    Parameters
    ----------
    url : http(s) or file URL
    path : where the checked file goes; the download goes to ``path + ".partial"`` until it is checked
    sha256 : the expected SHA-256 as hex digits: all 64, or a leading prefix (torchvision's 8); None to accept
        any content (for files with no published digest; the caller should say so)
    progress : show a tqdm bar
    timeout : seconds to wait for the server before giving up on a connection or a read

    Returns ``path``. An existing ``path`` is taken as it is (it was checked before it was renamed there).

    Raises
    ------
    DownloadError (a ConnectionError) when the server cannot be reached or the connection breaks: the bytes
    received are kept in the ``.partial`` file and the next call continues from there. ChecksumError (a
    ValueError) when the complete file does not match ``sha256``.
    """
    from minivgg.progress import progress_bar

    path = os.fspath(path)
    if sha256 is not None:
        checked_digest(sha256)  # a malformed digest is refused before anything is fetched
    if os.path.exists(path):
        return path
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    partial = path + ".partial"
    start = os.path.getsize(partial) if os.path.exists(partial) else 0
    response = _respond(url, start, partial, timeout)
    if response is None:  # the partial file already holds every byte
        try:
            return _check_and_place(partial, path, sha256, url)
        except ChecksumError:  # a complete file that failed its check before: fetch it again, from zero
            os.remove(partial)
            start = 0
            response = _respond(url, start, partial, timeout)
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the Range header and sends the whole file: write it from the start
        content_range = response.headers.get("Content-Range") or ""
        if start and not content_range.startswith(f"bytes {start}-"):
            os.remove(partial)  # not the bytes that follow ours: appending them would make a wrong file
            raise DownloadError(f"{url}: asked for the bytes from {start:,} on, the server sent the range "
                                f"{content_range!r}; the partial file was removed: run again to start afresh")
        total = _total_size(response, start)
        received = start
        with open(partial, "ab" if start else "wb") as handle, \
                progress_bar(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=os.path.basename(path), disable=not progress) as bar:
            while block := _read(response, url, received, partial):
                try:
                    handle.write(block)
                except OSError as error:  # disk full, not the connection: say so
                    raise WriteError(f"cannot write {partial} after {received:,} bytes ({error}); they are kept: "
                                     f"make room and run again to resume") from error
                received += len(block)
                bar.update(len(block))
    if total is not None and received < total:
        # http.client ends a body the server cut short with an empty read, not an error: count the bytes.
        raise DownloadError(f"{url}: the server closed the connection after {received:,} of {total:,} bytes; "
                            f"they are kept in {partial}: run again to resume")
    return _check_and_place(partial, path, sha256, url)


def _read(response, url, received, partial):
    """The next block of the body (empty at its end); DownloadError when the connection breaks."""
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as error:  # reset, timed out; a chunked body cut short
        raise DownloadError(f"{url}: the connection broke after {received:,} bytes ({error}); they are kept in "
                            f"{partial}: run again to resume") from error


def _check_and_place(partial, path, sha256, what):
    _check_digest(partial, sha256, what)
    os.replace(partial, path)
    return path


def _respond(url, start, partial, timeout):
    """The open response for the bytes from ``start`` on, or None when ``partial`` is already complete."""
    try:
        return _open(url, start, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:
            # "Range not satisfiable": the partial file holds every byte, or more than the file has ("bytes */N"
            # says how many it has). More is not this file: without a digest it would be taken, so start again.
            total = ((error.headers or {}).get("Content-Range") or "").rpartition("/")[2].strip()
            if total.isdigit() and int(total) != start:
                return _respond(url, 0, partial, timeout)
            return None
        raise DownloadError(f"{url}: the server answered HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        kept = f" The {start:,} bytes received so far are kept in {partial}." if start else ""
        raise DownloadError(f"cannot reach {url} ({reason}): are you offline?{kept} Run again to resume, or "
                            f"put the file at {partial[:-len('.partial')]} yourself") from error
