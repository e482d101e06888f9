"""Real data: file lookup (``$SCWLM_DATA_DIR``, user cache, download), checksums and loaders.

Every file the loaders know is listed in :data:`REGISTRY` (name -> URL, SHA-256, description,
provenance); ``datasets/README.md`` in the source tree has the same table for humans.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Mapping, NamedTuple

import numpy as np

from ._dataset import Dataset, _int

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["REGISTRY", "RegistryEntry", "cache_dir", "data_path", "ocean_vortex", "embryoid_body", "dentate_gyrus"]

logger = logging.getLogger(__name__)

ENV_VAR = "SCWLM_DATA_DIR"
_HINT = ("Put the file in one of the folders above, or set the SCWLM_DATA_DIR environment variable to the "
         "folder that contains it (see datasets/README.md in the scwlm source tree).")


class RegistryEntry(NamedTuple):
    """What scwlm knows about one data file."""

    url: str | None
    """Where :func:`~scwlm.datasets.data_path` downloads it from (``None``: look-up only)."""
    sha256: str | None
    """Expected SHA-256 hex digest (``None``: unknown, not verified)."""
    description: str
    """What the file holds and where it came from."""


_WLM_RAW = "https://raw.githubusercontent.com/guanton/WLM/main/datasets/"

#: every data file the loaders know: name -> (url, sha256, description)
REGISTRY: Mapping[str, RegistryEntry] = MappingProxyType({
    "oceans_small_vortex.npz": RegistryEntry(
        _WLM_RAW + "oceans_with_v0.npz",
        "30168f54f8eb2ea59f23f28adf01e71917491dceffd61106801a493a2c23e0ce",
        "Small Gulf-of-Mexico vortex (HYCOM reanalysis, via curly-flow-matching): keys positions and "
        "velocities, (9, 111, 2) float64. Byte-identical to guanton/WLM datasets/oceans_with_v0.npz."),
    "oceans_big_vortex.npz": RegistryEntry(
        _WLM_RAW + "big_oceans_forecast.npz",
        "70d76e62cc2b32bdd4d8a4f78f7f8400aec60443d05fabd915f02626685bdac3",
        "Big Gulf-of-Mexico vortex (HYCOM reanalysis): keys positions and velocities, (11, 400, 2) float64. "
        "Byte-identical to guanton/WLM datasets/big_oceans_forecast.npz."),
    "eb_velocity_v5.npz": RegistryEntry(
        "https://raw.githubusercontent.com/KrishnaswamyLab/TrajectoryNet/master/data/eb_velocity_v5.npz",
        None,
        "Embryoid body scRNA-seq time course (Moon et al. 2019) in 100 PCs with RNA velocity "
        "(TrajectoryNet, Tong et al. 2020): pcs, pcs_delta (16819, 100), sample_labels 0..4. "
        "SHA-256 not recorded, so it is not verified."),
    "eb_velocity_v5_subset2750.npz": RegistryEntry(
        None,
        "0ea319eaf16da879c336c1fa73564fafc466dbef943365a9265963d9d6ac8076",
        "2750-cell subset of eb_velocity_v5.npz (the NLSB test+val split, 550 cells per day), re-packed: "
        "pcs, pcs_delta (2750, 100), sample_labels, cell_index (row in the full file), split."),
    "dentategyrus_cellrank_100obs.h5ad": RegistryEntry(
        None,
        "4fd000861ed6c09ec0f70bdc7cd445988b1ede6ea53f6cf4ff6bf1817687787e",
        "Dentate gyrus (La Manno et al. 2018), 100 cells x 278 genes with spliced/unspliced layers "
        "(cellrank test fixture adata_100.h5ad)."),
    "dentategyrus_cellrank_200obs.h5ad": RegistryEntry(
        None,
        "8f551647ef02a1e4ac771fdf058f316d4176101e6a5cd986abb58a7952572af4",
        "Dentate gyrus (La Manno et al. 2018), 200 cells x 530 genes with spliced/unspliced layers "
        "(cellrank test fixture adata_200.h5ad at commit c32a22021ff0)."),
})

_MAGIC = {".npz": b"PK\x03\x04", ".h5ad": b"\x89HDF\r\n\x1a\n"}


# -- lookup ------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The user cache folder for downloaded data: ``$XDG_CACHE_HOME/scwlm`` or ``~/.cache/scwlm``.

    Returns
    -------
    pathlib.Path
        The folder (it is created only when something is downloaded).

    Examples
    --------
    >>> cache_dir().name
    'scwlm'
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "scwlm"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(name: str, path: Path, expected: str | None) -> None:
    if expected is None:
        return
    actual = _sha256(path)
    if actual != expected:
        raise ValueError(f"checksum mismatch for data file {name!r} at {path}: expected sha256 {expected}, got "
                         f"{actual}. The file is corrupt or a different version; replace it with the original "
                         f"(see datasets/README.md) or delete it.")


def _open_url(url: str) -> IO[bytes]:
    """Open ``url`` for reading (the only place that touches the network; tests replace it)."""
    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - fixed https URLs from REGISTRY


def _download(name: str, url: str, dest: Path, expected: str | None) -> Path:
    """Download ``url`` to ``dest`` atomically: temp file in the same folder, verify, rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        head = b""
        with os.fdopen(fd, "wb") as out, _open_url(url) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                if len(head) < 8:
                    head += chunk[:8]
                h.update(chunk)
                out.write(chunk)
        actual = h.hexdigest()
        if expected is not None and actual != expected:
            raise ValueError(f"checksum mismatch for data file {name!r} downloaded from {url}: expected sha256 "
                             f"{expected}, got {actual}. Nothing was saved; the upstream file may have changed.")
        magic = _MAGIC.get(dest.suffix)
        if magic is not None and not head.startswith(magic):
            raise ValueError(f"the file downloaded from {url} for {name!r} is not a {dest.suffix} file (it starts "
                             f"with {head[:8]!r}; perhaps an error page or a Git LFS pointer). Nothing was saved.")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def data_path(name: str, *, download: bool = True) -> Path:
    """Find a registered data file, downloading it to the user cache if needed and possible.

    Looks in order at ``$SCWLM_DATA_DIR/<name>`` (the variable is read at call time), at the user
    cache (:func:`cache_dir`), and then, when ``download`` is true and :data:`REGISTRY` knows a URL,
    downloads the file to the cache (to a temporary file that is verified, then renamed). A file
    whose SHA-256 is registered is verified whenever it is found or downloaded.

    Parameters
    ----------
    name
        A file name from :data:`REGISTRY`, e.g. ``"oceans_small_vortex.npz"``.
    download
        Whether to download a missing file that has a known URL.

    Returns
    -------
    pathlib.Path
        Path of the (verified) file.

    Raises
    ------
    ValueError
        For an unknown name, or when the file's SHA-256 differs from the registered one (the
        message names the file and both digests).
    FileNotFoundError
        When the file is in none of the searched places and cannot be downloaded; the message lists
        every path searched, the URL if any, and how to point ``SCWLM_DATA_DIR`` at the file.

    Examples
    --------
    >>> data_path("oceans_small_vortex.npz")  # doctest: +SKIP
    PosixPath('/data/scwlm/oceans_small_vortex.npz')
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown data file {name!r}; known files: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    searched: list[str] = []
    env = os.environ.get(ENV_VAR, "")
    if env:
        candidate = Path(env).expanduser() / name
        searched.append(f"{candidate}  ($SCWLM_DATA_DIR)")
        if candidate.is_file():
            _verify(name, candidate, entry.sha256)
            return candidate
    else:
        searched.append("$SCWLM_DATA_DIR/<file>  (SCWLM_DATA_DIR is not set)")
    cached = cache_dir() / name
    searched.append(f"{cached}  (user cache)")
    if cached.is_file():
        _verify(name, cached, entry.sha256)
        return cached
    if entry.url is None:
        why = "No download URL is known for this file."
    elif not download:
        why = f"Download was not attempted (download=False); the file is available from {entry.url}"
    else:
        logger.info("downloading %s from %s to %s", name, entry.url, cached)
        try:
            return _download(name, entry.url, cached, entry.sha256)
        except (OSError, http.client.HTTPException) as exc:
            why = f"Downloading it from {entry.url} failed: {exc}"
    lines = "\n".join(f"  - {s}" for s in searched)
    raise FileNotFoundError(f"data file {name!r} was not found. Searched:\n{lines}\n{why}\n{_HINT}")


def _resolve(name: str, path: str | os.PathLike[str] | None, download: bool) -> tuple[Path, dict[str, Any]]:
    """Path to load plus provenance; an explicit ``path`` is used as is (verified only by comparison)."""
    entry = REGISTRY[name]
    if path is None:
        p = data_path(name, download=download)
        digest = entry.sha256 if entry.sha256 is not None else _sha256(p)
        verified = entry.sha256 is not None
    else:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"no such data file: {p}")
        digest = _sha256(p)
        verified = entry.sha256 is not None and digest == entry.sha256
    prov = {"file": p.name, "registry_name": name, "path": str(p), "sha256": digest,
            "sha256_verified": verified, "upstream": entry.url or "", "description": entry.description}
    return p, prov


def _load_npz(path: Path, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as exc:  # not a zip/npy file, or a pickle we refuse to load
        raise ValueError(f"could not read {path} as an .npz archive: {exc}") from exc
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is a single .npy array, not an .npz archive with named arrays")
    with f:
        missing = [k for k in keys if k not in f.files]
        if missing:
            raise ValueError(f"{path} lacks the keys {missing} (it has {sorted(f.files)})")
        try:
            return {k: np.asarray(f[k]) for k in keys + optional if k in f.files}
        except Exception as exc:  # truncated member, object array, ...
            raise ValueError(f"could not read the arrays of {path}: {exc}") from exc


# -- loaders -----------------------------------------------------------------------------------------
def ocean_vortex(
    which: str = "small", *, path: str | os.PathLike[str] | None = None, download: bool = True
) -> Dataset:
    """Drifter-like particles in a Gulf-of-Mexico vortex (HYCOM reanalysis), with velocities.

    Parameters
    ----------
    which
        ``"small"``: 111 particles at 9 times (the interpolation benchmark), file
        ``oceans_small_vortex.npz``. ``"big"``: 400 particles at 11 times (the forecast benchmark),
        file ``oceans_big_vortex.npz``.
    path
        Load this file instead of looking the registered one up (no checksum is enforced;
        ``meta["sha256_verified"]`` says whether it matches the registered digest).
    download
        Passed to :func:`~scwlm.datasets.data_path`.

    Returns
    -------
    Dataset
        ``snapshots[t] = positions[t]`` ``(N, 2)``, ``velocities[t]`` at every time, and times
        ``0, 1, ..., T-1`` (unit spacing, as the authors normalise). ``meta`` holds the provenance
        (file, path, sha256) and the paper protocol: small -> ``meta["holdout"] = [1, 3, 5, 7]``
        (train on indices 0, 2, 4, 6, 8, i.e. the paper's t1, t3, t5, t7, t9; test on t2, t4, t6, t8);
        big -> ``meta["n_train"] = 10`` (train on the first 10, forecast the last).

    Raises
    ------
    ValueError
        For an unknown ``which``, a checksum mismatch, or a file whose ``positions``/``velocities``
        are missing, not 3-D, or of different shapes.
    FileNotFoundError
        If the file cannot be found or downloaded (see :func:`~scwlm.datasets.data_path`).

    Examples
    --------
    >>> snaps, times, vels = ocean_vortex("small")  # doctest: +SKIP
    >>> len(snaps), snaps[0].shape, times[:3]  # doctest: +SKIP
    (9, (111, 2), array([0., 1., 2.]))
    """
    names = {"small": "oceans_small_vortex.npz", "big": "oceans_big_vortex.npz"}
    if which not in names:
        raise ValueError(f"which must be 'small' or 'big', got {which!r}")
    p, prov = _resolve(names[which], path, download)
    arrays = _load_npz(p, ("positions", "velocities"))
    pos = arrays["positions"].astype(np.float64)
    vel = arrays["velocities"].astype(np.float64)
    if pos.ndim != 3 or pos.shape != vel.shape or pos.shape[0] < 1 or pos.shape[1] < 1:
        raise ValueError(f"{p}: positions and velocities must be 3-D arrays (times, particles, dim) of the same "
                         f"shape, got {pos.shape} and {vel.shape}")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
        raise ValueError(f"{p}: positions/velocities contain non-finite values")
    T = pos.shape[0]
    meta: dict[str, Any] = {
        "name": f"ocean_vortex/{which}", "which": which, **prov,
        "citation": "HYCOM Gulf of Mexico reanalysis via Petrovic et al. 2025 (curly flow matching); "
                    "protocol of Guan, Atanackovic & Neklyudov (WLM)",
    }
    if which == "small":
        meta["holdout"] = [1, 3, 5, 7]
        meta["train"] = [0, 2, 4, 6, 8]
    else:
        meta["n_train"] = 10
    return Dataset(list(pos), np.arange(T, dtype=np.float64), list(vel), meta)


_EB_FULL = "eb_velocity_v5.npz"
_EB_SUBSET = "eb_velocity_v5_subset2750.npz"


def embryoid_body(
    n_pcs: int = 5,
    *,
    as_anndata: bool = False,
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset | AnnData:
    """Embryoid body scRNA-seq time course (5 days) in PCA space with RNA velocity.

    Uses ``eb_velocity_v5.npz`` (16,819 cells; found like any registered file and downloaded if
    needed and allowed), else the local 2,750-cell subset ``eb_velocity_v5_subset2750.npz``
    (looked up only; a :class:`UserWarning` says so, since numbers on the subset are not
    comparable with the paper's). Standardisation as in TrajectoryNet and the paper: the first
    ``n_pcs`` PCs are centred and scaled with the global mean and standard deviation (NumPy
    ``std``, ``ddof=0``, over all cells of all days, per coordinate); the velocities
    (``pcs_delta``) are divided by the same standard deviation, without centring.

    Parameters
    ----------
    n_pcs
        Number of leading PCs to keep (1..100).
    as_anndata
        Return an :class:`anndata.AnnData` with the raw, unstandardised data instead:
        ``X`` = ``pcs`` (all columns, float32), ``obs["day"]`` (int64 label),
        ``obs["cell_index"]`` (row in the full file), ``obsm["X_pca"]`` = ``pcs``,
        ``obsm["velocity_pca"]`` = ``pcs_delta`` (all columns), ``uns["scwlm_source"]`` = provenance.
        ``n_pcs`` is then only validated.
    path
        Load this file instead of looking up the registered ones (no checksum is enforced).
    download
        Whether the full file may be downloaded.

    Returns
    -------
    Dataset or anndata.AnnData
        Dataset: one snapshot ``(n_day, n_pcs)`` per day (labels sorted; times = the labels
        ``0, 1, 2, 3, 4``), velocities for every day. ``meta``: file, path, sha256, ``n_cells``
        per day, ``mean``, ``std``, ``labels``, ``n_pcs``, ``subset`` (whether the 2,750-cell file
        was used) and ``holdouts = [1, 2, 3]`` (the paper's leave-one-out protocol).

    Raises
    ------
    FileNotFoundError
        If neither file is available (the message names both and every path searched).
    ValueError
        For a bad ``n_pcs``, a checksum mismatch, or a file whose ``pcs``/``pcs_delta`` differ in
        shape, are not 2-D, or whose ``sample_labels`` do not have one entry per cell.

    Examples
    --------
    >>> ds = embryoid_body(n_pcs=5)  # doctest: +SKIP
    >>> ds.n_snapshots, ds.dim, ds.meta["holdouts"]  # doctest: +SKIP
    (5, 5, [1, 2, 3])
    """
    n_pcs = _int("n_pcs", n_pcs)
    if path is not None:
        p, prov = _resolve(_EB_FULL, path, download)
        if prov["sha256"] == REGISTRY[_EB_SUBSET].sha256:
            prov.update(registry_name=_EB_SUBSET, sha256_verified=True, upstream="",
                        description=REGISTRY[_EB_SUBSET].description)
    else:
        # local files first (the full file, then the subset); only then try to download the full file
        try:
            p, prov = _resolve(_EB_FULL, None, False)
        except FileNotFoundError as full_exc:
            try:
                p, prov = _resolve(_EB_SUBSET, None, False)
            except FileNotFoundError as sub_exc:
                if not download:
                    raise FileNotFoundError(
                        f"neither {_EB_FULL!r} nor its subset {_EB_SUBSET!r} is available.\n"
                        f"{full_exc}\n{sub_exc}") from None
                try:
                    p, prov = _resolve(_EB_FULL, None, True)
                except FileNotFoundError as dl_exc:
                    raise FileNotFoundError(
                        f"neither {_EB_FULL!r} nor its subset {_EB_SUBSET!r} is available.\n"
                        f"{dl_exc}\n{sub_exc}") from None
        if prov["registry_name"] == _EB_SUBSET:
            warnings.warn(f"{_EB_FULL} is not available; using the 2750-cell subset {p}. Results are not "
                          f"comparable with the paper's full-data numbers (the standardisation is fitted on "
                          f"the subset).", UserWarning, stacklevel=2)
    subset = prov["registry_name"] == _EB_SUBSET

    arrays = _load_npz(p, ("pcs", "pcs_delta", "sample_labels"), optional=("cell_index", "split"))
    cell_index, split = arrays.get("cell_index"), arrays.get("split")
    pcs, dpcs, labels = arrays["pcs"], arrays["pcs_delta"], arrays["sample_labels"]
    if pcs.ndim != 2 or pcs.shape != dpcs.shape:
        raise ValueError(f"{p}: pcs and pcs_delta must be 2-D arrays (cells, PCs) of the same shape, got "
                         f"{pcs.shape} and {dpcs.shape}")
    n_cells, n_cols = pcs.shape
    if labels.ndim != 1 or labels.shape[0] != n_cells:
        raise ValueError(f"{p}: sample_labels must have one entry per cell ({n_cells}), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"{p}: sample_labels must be numeric day labels, got dtype {labels.dtype}")
    if cell_index is None or cell_index.shape != (n_cells,):
        cell_index = np.arange(n_cells)
    if n_pcs > n_cols:
        raise ValueError(f"n_pcs must be between 1 and {n_cols} (the PCs in {p.name}), got {n_pcs}")
    if not (np.all(np.isfinite(pcs)) and np.all(np.isfinite(dpcs))):
        raise ValueError(f"{p}: pcs/pcs_delta contain non-finite values")

    days = np.unique(labels)  # sorted
    if as_anndata:
        return _eb_anndata(pcs, dpcs, labels, cell_index, split, prov, subset)

    x = pcs[:, :n_pcs].astype(np.float64)
    v = dpcs[:, :n_pcs].astype(np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    if np.any(std <= 0):
        raise ValueError(f"{p}: PC columns {np.flatnonzero(std <= 0).tolist()} are constant; cannot standardise")
    xs = (x - mean) / std
    vs = v / std
    snaps = [xs[labels == d] for d in days]
    vels = [vs[labels == d] for d in days]
    meta: dict[str, Any] = {
        "name": "embryoid_body", **prov, "subset": subset, "n_pcs": n_pcs,
        "labels": days.tolist(), "n_cells": [int(s.shape[0]) for s in snaps],
        "mean": mean, "std": std, "holdouts": [1, 2, 3],
        "standardisation": "X <- (pcs - mean) / std; v <- pcs_delta / std (global over all cells, ddof=0)",
        "citation": "Moon et al. 2019 (Nat. Biotechnol.), velocities by Tong et al. 2020 (TrajectoryNet)",
    }
    return Dataset(snaps, days.astype(np.float64), vels, meta)


def _eb_anndata(pcs: np.ndarray, dpcs: np.ndarray, labels: np.ndarray, cell_index: np.ndarray,
                split: np.ndarray | None, prov: dict[str, Any], subset: bool) -> AnnData:
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame({"day": labels.astype(np.int64), "cell_index": cell_index.astype(np.int64)},
                       index=pd.Index([f"cell{int(i)}" for i in cell_index], dtype=str))
    if split is not None and split.shape == labels.shape:
        obs["split"] = pd.Categorical(split.astype(str))
    var = pd.DataFrame(index=pd.Index([f"PC{i + 1}" for i in range(pcs.shape[1])], dtype=str))
    adata = ad.AnnData(X=pcs.astype(np.float32), obs=obs, var=var)
    adata.obsm["X_pca"] = pcs.astype(np.float64)
    adata.obsm["velocity_pca"] = dpcs.astype(np.float64)
    adata.uns["scwlm_source"] = {**prov, "subset": bool(subset),
                                 "citation": "Moon et al. 2019 (Nat. Biotechnol.); Tong et al. 2020 (TrajectoryNet)"}
    return adata


def dentate_gyrus(n_obs: int = 200) -> AnnData:
    """Dentate gyrus RNA-velocity data (La Manno et al. 2018): spliced/unspliced counts, two ages.

    Small cellrank test fixtures (scVelo-normalised layers ``spliced``, ``unspliced``, obs
    ``age(days)`` with values 12 and 35, ``clusters``, ...); see ``datasets/README.md``.

    Parameters
    ----------
    n_obs
        100 (278 genes) or 200 (530 genes; contains 6 duplicated cells).

    Returns
    -------
    anndata.AnnData
        The file as read by :func:`anndata.read_h5ad`.

    Raises
    ------
    ValueError
        If ``n_obs`` is not 100 or 200, or on a checksum mismatch.
    FileNotFoundError
        If the file is not in ``$SCWLM_DATA_DIR`` or the user cache (there is no download URL).

    Examples
    --------
    >>> adata = dentate_gyrus(200)  # doctest: +SKIP
    >>> adata.n_obs, sorted(adata.obs["age(days)"].unique())  # doctest: +SKIP
    (200, ['12', '35'])
    """
    if n_obs not in (100, 200) or isinstance(n_obs, bool):
        raise ValueError(f"n_obs must be 100 or 200, got {n_obs!r}")
    import anndata as ad

    path = data_path(f"dentategyrus_cellrank_{n_obs}obs.h5ad")
    with warnings.catch_warnings():
        # the fixtures were written by an older anndata; reading them is fine, the warnings are noise
        warnings.filterwarnings("ignore", message=".*without encoding metadata", module="anndata")
        old_format = getattr(ad, "OldFormatWarning", None)
        if old_format is not None:
            warnings.filterwarnings("ignore", category=old_format)
        return ad.read_h5ad(path)
