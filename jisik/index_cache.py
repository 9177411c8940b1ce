"""Saving and loading a PassageIndex next to its store (`<db>.index/`).

Rebuilding the index from the store costs ~15 s per 40k passages; loading a saved copy
takes a fraction of a second, so only the first process after a large ingest pays.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .index import BIGRAM_B, BIGRAM_K1, FORMAT_VERSION, MORPH_B, MORPH_K1, DenseIndex, LexicalIndex
from .store import Store

if TYPE_CHECKING:
    from .index import PassageIndex

log = logging.getLogger(__name__)


class IndexCache:
    """A saved PassageIndex in `<db>.index/`, so a new process need not rebuild it.

    Layout: `CURRENT` names a folder `v<FORMAT>-<random>/` holding `manifest.json` and the
    arrays as .npy files (memory-mapped on load: several processes share the pages) and
    the morpheme vocabulary and titles as JSON. A save writes a fresh folder, then replaces
    `CURRENT` (write + rename, atomic), then removes older folders; an flock on `lock`
    keeps two processes from saving at once (the second one skips).

    Only what never changes is saved: passages are append-only, so the index of passages
    1..N stays right while the store is the same store. The version table (validity) is
    always re-read from the store. A saved copy is used only if the manifest matches
    (format, analyzer, dense dimension, BM25 parameters, the store's random `index_store_id`
    setting, and id/version/terms of sampled covered passages); otherwise, or on any read
    error, the index is rebuilt from the store.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def for_store(cls, store: Store) -> "IndexCache | None":
        path = getattr(store, "path", None)
        if path is None or str(path) in ("", ":memory:") or os.environ.get("JISIK_INDEX_CACHE", "1") == "0":
            return None
        return cls(Path(str(path) + ".index"))

    # --- identity ---------------------------------------------------------------------

    @staticmethod
    def _samples(passage_ids: np.ndarray) -> list[int]:
        n = len(passage_ids)
        picks = sorted({0, n - 1, *np.linspace(0, n - 1, 8).astype(int).tolist()})
        return [int(passage_ids[i]) for i in picks]

    @staticmethod
    def _fingerprint(store: Store, passage_ids: list[int]) -> list[list]:
        out = []
        for pid in passage_ids:
            record = next(iter(store.passages_after(pid - 1)), None)
            if record is None or record.passage_id != pid:
                out.append([pid, None, None])
            else:
                out.append([pid, int(record.version_key), hashlib.sha1(record.terms.encode("utf-8")).hexdigest()])
        return out

    def _expected(self, index: PassageIndex) -> dict:
        return {"format": FORMAT_VERSION, "analyzer": index.analyzer_name, "dense_dim": index.dim,
                "morph": [MORPH_K1, MORPH_B], "bigram": [BIGRAM_K1, BIGRAM_B]}

    # --- loading ------------------------------------------------------------------------

    def load_into(self, index: PassageIndex) -> bool:
        """Fill an empty index from the saved copy if it is valid; False (index untouched) if not."""
        for _ in range(2):  # a save may remove the folder between reading CURRENT and opening it
            try:
                return self._load(index)
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - any problem means: rebuild
                log.warning("ignoring saved index in %s (%s: %s); rebuilding", self.folder,
                            type(exc).__name__, exc)
                return False
        return False

    def _load(self, index: PassageIndex) -> bool:
        current = self.folder / "CURRENT"
        if not current.exists():
            return False
        folder = self.folder / current.read_text(encoding="utf-8").strip()
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for key, value in self._expected(index).items():
            if manifest.get(key) != value:
                log.info("saved index in %s is for %s=%r, not %r; rebuilding", self.folder, key,
                         manifest.get(key), value)
                return False
        store_id = index.store.setting("index_store_id")
        if store_id is None or manifest.get("store_id") != store_id:
            log.info("saved index in %s belongs to another store; rebuilding", self.folder)
            return False
        for name, size in manifest["files"].items():
            if (folder / name).stat().st_size != size:
                raise ValueError(f"{name} has the wrong size")
        fingerprint = manifest["fingerprint"]
        if self._fingerprint(index.store, [f[0] for f in fingerprint]) != fingerprint:
            log.info("saved index in %s does not match the store's passages; rebuilding", self.folder)
            return False

        def get(name: str, mmap: bool = False) -> np.ndarray:
            return np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

        size = int(manifest["size"])
        passage_ids, version_keys, title_of = get("passage_ids"), get("version_keys"), get("title_of")
        lexical = LexicalIndex.load_from(folder, "morph", manifest["morph_index"])
        bigram = LexicalIndex.load_from(folder, "bigram", manifest["bigram_index"])
        titles = json.loads((folder / "titles.json").read_text(encoding="utf-8"))
        if not (len(passage_ids) == len(version_keys) == len(title_of) == lexical.size == bigram.size == size
                and len(titles["titles"]) == len(titles["terms"])
                and (size == 0 or (int(title_of.max()) < len(titles["titles"]) and title_of.min() >= 0))
                and int(passage_ids[-1]) == manifest["last_passage_id"]):
            raise ValueError("saved arrays are inconsistent")
        dense = None
        if index.dim:
            vectors = get("dense", mmap=True)
            if vectors.shape != (size, index.dim):
                raise ValueError("dense vectors have the wrong shape")
            dense = DenseIndex(index.dim)
            dense.add(vectors)  # float16 on disk, float32 in memory
        # All checks passed: nothing below can fail half-way.
        index.lexical, index.bigram = lexical, bigram
        for title, terms in zip(titles["titles"], titles["terms"]):
            index._register_title(title, terms)
        index.title_of = title_of.astype(np.int64)
        index.passage_ids = passage_ids.astype(np.int64)
        index.version_keys = version_keys.astype(np.int64)
        if dense is not None:
            index.dense = dense
        index.saved_size = size
        return True

    # --- saving -------------------------------------------------------------------------

    def save(self, index: PassageIndex) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / "lock", "a+") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return False  # another process is saving
                try:
                    self._save(index)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
            return True
        except Exception as exc:  # noqa: BLE001 - a failed save must not fail a search
            log.warning("could not save the index to %s (%s: %s)", self.folder, type(exc).__name__, exc)
            return False

    def _save(self, index: PassageIndex) -> None:
        store = index.store
        store_id = store.setting("index_store_id")
        if store_id is None:
            store_id = uuid.uuid4().hex
            store.set_setting("index_store_id", store_id)
        name = f"v{FORMAT_VERSION}-{uuid.uuid4().hex[:12]}"
        tmp = self.folder / (name + ".tmp")
        tmp.mkdir()
        try:
            files: dict[str, np.ndarray | str] = {
                "passage_ids.npy": index.passage_ids, "version_keys.npy": index.version_keys,
                "title_of.npy": index.title_of,
                "titles.json": json.dumps({"titles": index.titles, "terms": index.title_terms}, ensure_ascii=False),
            }
            if index.dense is not None:
                files["dense.npy"] = index.dense.matrix.astype(np.float16)
            manifest = dict(self._expected(index))
            manifest["morph_index"] = index.lexical.save_to(tmp, "morph", files)
            manifest["bigram_index"] = index.bigram.save_to(tmp, "bigram", files)
            sizes = {}
            for fname, content in files.items():
                if isinstance(content, str):
                    (tmp / fname).write_text(content, encoding="utf-8")
                else:
                    np.save(tmp / fname, content, allow_pickle=False)
                sizes[fname] = (tmp / fname).stat().st_size
            manifest.update({
                "store_id": store_id, "store_path": str(Path(str(store.path)).resolve()),
                "size": index.size, "last_passage_id": int(index.passage_ids[-1]),
                "fingerprint": self._fingerprint(store, self._samples(index.passage_ids)),
                "files": sizes, "saved_at": time.time()})
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            os.rename(tmp, self.folder / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        pointer = self.folder / f"CURRENT.{uuid.uuid4().hex[:8]}.tmp"
        pointer.write_text(name + "\n", encoding="utf-8")
        os.replace(pointer, self.folder / "CURRENT")
        for old in self.folder.iterdir():  # readers that mapped old files keep them until they exit
            if old.is_dir() and old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        log.info("saved the index of %d passages to %s", index.size, self.folder / name)
