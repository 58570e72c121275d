"""The run directory: the one module that knows its layout and formats.

A run directory is the only output of training and the only input of sample / eval / report /
diagnose. Every other module reads and writes a run through ``RunDir``::

    config.yaml        the resolved config (written at every start)
    data.json          what the players need from the data: shape, classes, value range, fingerprint
                       (written at every start; marks the folder as a ganforge run)
    metrics.jsonl      one record per logging window (and periodic evaluations, rollback events)
    checkpoints/       step_XXXXXXXX.safetensors (train.checkpoint's format)
    samples/           step_XXXXXXXX.npz sample snapshots (numpy, no pickle)
    events/            TensorBoard event files
    diagnostics.jsonl  the diagnostics' signals;  events.jsonl  their warning episodes
    eval.json          the last ``ganforge eval``;  report.html  the last ``ganforge report``
    analysis.json      the last ``ganforge analyze`` (is the checkpoint an equilibrium of the game?)
    analysis.jsonl     the equilibrium analyses during training (``train.analyze_every``)
    .ganforge.lock     held (flock) by the training process that writes the run

Layering: this module may import io, errors, config and train.checkpoint; nothing it imports
imports it back. Files are written atomically (ganforge.io) or appended line by line (.jsonl,
whose readers skip a torn last line).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.errors import CheckpointError, ConfigError, GanforgeError
from ganforge.io import atomic_open, read_jsonl, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    import numpy as np

    from ganforge.config import Config
    from ganforge.data.base import Dataset

CONFIG = "config.yaml"
DATA = "data.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
TENSORBOARD = "events"
DIAGNOSTICS = "diagnostics.jsonl"
WARNINGS = "events.jsonl"
EVAL = "eval.json"
ANALYSIS = "analysis.json"
ANALYSIS_LOG = "analysis.jsonl"
PRIVACY = "privacy.json"  # the spent differential-privacy budget (train.privacy)
MODEL_CARD = "model_card.md"  # written with the report
REPORT = "report.html"
LOCK = ".ganforge.lock"
# a table given to the Python API as a data frame (TableSynthesizer.fit), kept for resume and eval
TRAINING_TABLE = "training_table.parquet"
SUPERSEDED_PREFIX = "superseded-"

RUN_FORMAT = "ganforge-run"
DATA_VERSION = 1

#: files of a run's results: an earlier run's copies would mix with a fresh start's
RESULT_FILES = (METRICS, SAMPLES, TENSORBOARD, DIAGNOSTICS, WARNINGS, EVAL, ANALYSIS, ANALYSIS_LOG, REPORT, PRIVACY, MODEL_CARD)


class RunDirError(GanforgeError):
    """The run directory is missing, foreign, busy, or holds something this command must not touch."""


# -- small helpers -------------------------------------------------------------------------------

def _step_of(name: str, prefix: str = "step_") -> int | None:
    stem = name.split(".", 1)[0]
    if not stem.startswith(prefix):
        return None
    digits = stem[len(prefix):]
    return int(digits) if digits.isdigit() else None


def check_output_path(path: str | Path, option: str = "--out", directory: bool = False) -> Path:
    """Refuse an output path that cannot be written, before any work: empty, under a file, in a
    directory this process may not write, or (``directory``) an existing file. Creates nothing."""
    text = str(path)
    if not text.strip():
        raise RunDirError(f"{option} is empty; give a file or directory to write")
    p = Path(os.path.expanduser(text))
    if directory and p.exists() and not p.is_dir():
        raise RunDirError(f"{option} {text}: exists and is not a directory")
    # the nearest existing ancestor must be a directory that we may create files in
    probe = p if (directory and p.exists()) else p.parent
    probe = probe if str(probe) else Path(".")
    while not probe.exists():
        if probe.is_symlink():  # a dangling link
            raise RunDirError(f"{option} {text}: {probe} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise RunDirError(f"{option} {text}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunDirError(f"{option} {text}: cannot create files in {probe} (permission denied)")
    return p


def os_error_line(exc: OSError, what: str) -> RunDirError:
    """One line for an OSError met while writing ``what``."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason += " (a read-only or protected location)"
    return RunDirError(f"cannot write {what}: {reason}; nothing was changed there")


# -- the data description ------------------------------------------------------------------------

def describe_dataset(dataset: Dataset, cfg: Config) -> dict[str, Any]:
    """What data.json records: the run-directory marker, the config's dataset name, and the data
    layer's description (``Dataset.describe()``: shape, classes, value range, size, fingerprint...),
    plus ``finite`` (False: a distribution, rebuilt from the config without files)."""
    return {"format": RUN_FORMAT, "version": DATA_VERSION, "dataset": cfg.data.name, **dataset.describe(),
            "finite": bool(dataset.is_finite)}


def recorded_dataset(desc: dict[str, Any], source: str) -> Dataset:
    """A stand-in for a finite dataset read from data.json: shape, classes and value range, no examples."""
    from ganforge.data.base import Dataset

    class RecordedData(Dataset):
        """The training data as data.json describes it; its examples are not loaded."""

        def __init__(self) -> None:
            self.shape = tuple(int(s) for s in desc["shape"])
            self.n_classes = int(desc.get("n_classes") or 0)
            vr = desc.get("value_range")
            self.value_range = None if vr is None else (float(vr[0]), float(vr[1]))
            self.class_names = desc.get("class_names")
            self.name = str(desc.get("dataset", ""))
            self.recorded_fingerprint = desc.get("fingerprint")
            self.source = source

        def fingerprint(self) -> str:
            return str(self.recorded_fingerprint)

        def __repr__(self) -> str:
            return f"RecordedData({self.name!r}, shape={self.shape}, n_classes={self.n_classes}, from {self.source})"

        def sample(self, n, generator):
            from ganforge.errors import DataError

            raise DataError(f"{self.source}: the run's data is described, not loaded (its examples are not needed "
                            "to sample; rebuild the dataset to compare with it)")

    return RecordedData()


# -- the lock ------------------------------------------------------------------------------------

class RunLock:
    """An exclusive ``flock`` on ``run_dir/.ganforge.lock``: one training process per run directory.

    The kernel releases the lock when its process dies (even by SIGKILL), so a killed trainer never
    leaves it stuck. The file names its holder (pid, host, start time) for the refusal message.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise os_error_line(exc, str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise os_error_line(exc, str(self.path)) from None
            busy = self._busy(os.pread(fd, 512, 0))
            os.close(fd)
            raise busy from None
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} (since {started})\n".encode(), 0)
        self.fd = fd
        return self

    def check_free(self) -> None:
        """Refuse when another process holds the lock; creates and keeps nothing (a check before
        the real ``acquire``, so that a busy run directory is named before anything else is said)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return  # no lock file: nobody has trained here
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._busy(os.pread(fd, 512, 0)) from None
        finally:
            os.close(fd)  # closing drops a lock taken just now

    def _busy(self, text: bytes) -> RunDirError:
        holder = text.decode("utf-8", "replace").strip() or "another process"
        return RunDirError(f"{self.path.parent} is being trained by {holder}; wait for it to end (or stop it), "
                           "or train into another --out")

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- the run directory ---------------------------------------------------------------------------

class RunDir:
    """A run directory's paths and files. Constructing one touches nothing on disk."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()  # "~/runs/x" as a shell would

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # paths
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def data_path(self) -> Path:
        return self.path / DATA

    @property
    def model_card_path(self) -> Path:
        return self.path / MODEL_CARD

    @property
    def privacy_path(self) -> Path:
        """privacy.json: the differential-privacy budget a run has spent (train/privacy.py)."""
        return self.path / PRIVACY

    @property
    def training_table_path(self) -> Path:
        """The training rows of a table given as a data frame (the Python API writes them here)."""
        return self.path / TRAINING_TABLE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def diagnostics_path(self) -> Path:
        return self.path / DIAGNOSTICS

    @property
    def warnings_path(self) -> Path:
        return self.path / WARNINGS

    @property
    def eval_path(self) -> Path:
        return self.path / EVAL

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def analysis_path(self) -> Path:
        return self.path / ANALYSIS

    @property
    def analysis_log_path(self) -> Path:
        return self.path / ANALYSIS_LOG

    def read_analysis_log(self) -> list[dict[str, Any]]:
        """The records of analysis.jsonl (none when there is no such file)."""
        return read_jsonl(self.analysis_log_path)

    def write_analysis(self, analysis: dict[str, Any]) -> Path:
        """analysis.json, replaced atomically (``ganforge analyze``)."""
        write_json_atomic(self.analysis_path, analysis)
        return self.analysis_path

    def read_analysis(self) -> dict[str, Any] | None:
        """analysis.json, or None when there is none (or it cannot be read as JSON)."""
        try:
            return json.loads(self.analysis_path.read_text())
        except (OSError, ValueError):
            return None

    def lock(self) -> RunLock:
        return RunLock(self.path)

    # what the folder is
    def is_run(self) -> bool:
        """A ganforge run: data.json carries the run marker; or (runs written before data.json) a
        config.yaml beside a checkpoints/ folder or a metrics.jsonl."""
        desc = self.read_data()
        if desc is not None and desc.get("format") == RUN_FORMAT:
            return True
        return self.config_path.is_file() and (self.checkpoints_dir.is_dir() or self.metrics_path.is_file())

    def foreign_entries(self) -> list[str]:
        """Entries of a non-run folder other than what ganforge leaves there (the lock, temporary
        files of atomic writes, earlier runs moved aside): files ganforge did not write."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir()
                      if p.name not in (LOCK, TRAINING_TABLE) and not p.name.startswith(SUPERSEDED_PREFIX)
                      and not (p.name.startswith(".") and p.name.endswith(".tmp")))

    def require(self) -> RunDir:
        if not self.config_path.is_file():
            raise RunDirError(f"{self.path} is not a ganforge run directory (no {CONFIG})")
        return self

    # config and data description
    def read_config(self) -> Config:
        """The recorded config, read with the limits of any config file (size, encoding, nesting,
        aliases) and checked against the registries, as ``ganforge train`` checked it."""
        import yaml

        from ganforge.components import config_from_dict
        from ganforge.config import load_yaml, read_config_text

        self.require()
        path = self.config_path
        try:
            raw = load_yaml(read_config_text(path), str(path))
        except yaml.YAMLError as exc:
            raise RunDirError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        try:
            return config_from_dict(raw, source=str(path))
        except ConfigError as exc:
            if str(path) in str(exc):
                raise
            # the run's recorded config, not the user's: say which file holds what is refused
            prefix = f"config {exc.path}: " if exc.path else "config: "
            message = str(exc)[len(prefix):] if str(exc).startswith(prefix) else str(exc)
            raise ConfigError(exc.path, f"{message} (in {path}, the run's recorded config)") from None

    def write_config(self, cfg: Config) -> None:
        write_text_atomic(self.config_path, cfg.to_yaml())

    def read_data(self) -> dict[str, Any] | None:
        """data.json's description, or None for runs written before it (or when unreadable)."""
        try:
            if not self.data_path.is_file():  # only a regular file is opened (a FIFO would block)
                return None
            desc = json.loads(self.data_path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(desc, dict) or not isinstance(desc.get("shape"), list):
            return None
        return desc

    def write_data(self, desc: dict[str, Any]) -> None:
        write_json_atomic(self.data_path, desc)

    # metrics.jsonl: the one writer of its lines
    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl; a torn last line (a kill mid-write) is ignored."""
        return read_jsonl(self.metrics_path)

    def append_metrics(self, *records: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, records)

    def truncate_metrics(self, step: int) -> None:
        """Keep the records of steps up to ``step`` (a resume or a rollback replays the rest)."""
        truncate_jsonl(self.metrics_path, step)

    # other .jsonl logs (diagnostics.jsonl, events.jsonl)
    def append_log(self, path: Path, records: Iterable[dict[str, Any]]) -> None:
        append_jsonl(path, records)

    def truncate_log(self, path: Path, step: int, key: str = "logged_at") -> None:
        truncate_jsonl(path, step, key)

    # sample snapshots
    def snapshot_path(self, step: int) -> Path:
        return self.samples_dir / f"step_{step:08d}.npz"

    def write_snapshot(self, step: int, arrays: dict[str, np.ndarray]) -> Path:
        import numpy as np

        path = self.snapshot_path(step)
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    def snapshot_files(self) -> list[tuple[int, Path]]:
        """(step, path) of the sample snapshots, in step order (regular files only)."""
        if not self.samples_dir.is_dir():
            return []
        out = []
        for p in self.samples_dir.glob("step_*.npz"):
            step = _step_of(p.name)
            if step is not None and p.is_file():
                out.append((step, p))
        return sorted(out)

    @staticmethod
    def read_snapshot(path: Path) -> dict[str, np.ndarray] | None:
        """The arrays of one snapshot, loaded without pickle; None when it is unreadable."""
        import zipfile

        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def read_snapshots(self, up_to: int | None = None) -> list[tuple[int, dict[str, np.ndarray]]]:
        """(step, arrays) of every readable snapshot (up to step ``up_to``), in step order."""
        out = []
        for step, path in self.snapshot_files():
            if up_to is not None and step > up_to:
                continue
            arrays = self.read_snapshot(path)
            if arrays is not None:
                out.append((step, arrays))
        return out

    # checkpoints
    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of the checkpoints, oldest first; a non-regular file among them is refused."""
        from ganforge.train.checkpoint import list_checkpoints

        return list_checkpoints(self.checkpoints_dir)

    def newest_intact_before(self, step: int, accepted: Iterable[str]) -> tuple[int, Path] | None:
        """The newest checkpoint older than ``step`` that loads (for the hint when the newest is damaged)."""
        from ganforge.train.checkpoint import load_checkpoint

        hashes = tuple(accepted)
        for st, path in reversed(self.checkpoints()):
            if st >= step:
                continue
            try:
                load_checkpoint(path, hashes)
            except CheckpointError:
                continue
            return st, path
        return None

    def damaged_checkpoint_hint(self, exc: CheckpointError, accepted: Iterable[str]) -> CheckpointError:
        """``exc`` (the newest checkpoint failed to load), naming the older intact one and how to use it."""
        found = self.checkpoints()
        if not found or str(found[-1][1]) not in str(exc):
            return exc
        older = self.newest_intact_before(found[-1][0], accepted)
        if older is None:
            return exc
        newest = found[-1][1]
        return CheckpointError(f"{exc}; the older checkpoint {older[1]} (step {older[0]}) is intact: move the damaged "
                               f"file aside (mv {newest} {newest}.damaged) and run the same command again to go on "
                               f"from step {older[0]}")

    # a fresh start in an old run directory
    def supersede_results(self) -> Path | None:
        """Move an earlier run's files (its results, config and data description) into
        ``superseded-<UTC time>/`` so that a fresh start does not mix with them; return that folder."""
        present = [n for n in RESULT_FILES if (self.path / n).exists()]
        if not present:
            return None
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        dest = self.path / f"{SUPERSEDED_PREFIX}{stamp}"
        i = 1
        while dest.exists():
            dest = self.path / f"{SUPERSEDED_PREFIX}{stamp}-{i}"
            i += 1
        dest.mkdir()
        for name in (*RESULT_FILES, CONFIG, DATA):
            if (self.path / name).exists():
                os.replace(self.path / name, dest / name)
        return dest


# -- .jsonl files ----------------------------------------------------------------------------------

def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(r) + "\n" for r in records)
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(lines)


def truncate_jsonl(path: Path, step: int, key: str = "step") -> None:
    """Rewrite ``path`` (atomically) keeping the records whose ``key`` (else ``step``) is at most ``step``."""
    if not path.exists():
        return
    kept = [r for r in read_jsonl(path) if int(r.get(key, r.get("step", 0))) <= step]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))


def regular_file(path: Path, what: str = "file") -> Path:
    """``path`` when it is a regular file; refuse a FIFO, device or socket (opening one may hang)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return path  # the caller's open reports it
    if not stat.S_ISREG(mode):
        raise RunDirError(f"{path}: not a regular file (a FIFO, device or socket); a {what} must be a plain file")
    return path


__all__ = ["ANALYSIS", "ANALYSIS_LOG", "CHECKPOINTS", "CONFIG", "DATA", "EVAL", "LOCK", "METRICS", "MODEL_CARD", "PRIVACY", "REPORT", "RESULT_FILES", "RUN_FORMAT",
           "SAMPLES", "RunDir", "RunDirError", "RunLock", "check_output_path", "describe_dataset",
           "recorded_dataset", "regular_file"]
