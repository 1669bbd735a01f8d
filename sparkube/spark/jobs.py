"""Jobs: where they run, their ids, and the local (embedded Spark) runs of them.

``wordcount`` and ``submit`` share one rule (DESIGN.md): with ``--local`` on embedded
Spark; otherwise on the cluster if it is up, else on embedded Spark with one line saying
so. This module returns typed records; the CLI renders them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sparkube.aws.s3 import (
    Upload,
    concat_objects,
    download_prefix,
    list_keys,
    object_exists,
    s3a,
    upload_content_addressed,
)
from sparkube.env import Environment
from sparkube.errors import InputError, JobError, NoSuchCluster
from sparkube.spark import bundles, local, packages
from sparkube.spark import cluster as cluster_jobs
from sparkube.spark.apps import wordcount as wordcount_app
from sparkube.spark.config import (
    DYNAMIC_MIN_EXECUTORS,
    ClusterConfig,
    Dynamic,
    Resources,
    default_resources,
    executors_at_most,
)
from sparkube.spark.inputs import InputFile, check_output_dir, resolve_inputs
from sparkube.spark.podspec import Endpoints, JobSpec
from sparkube.spark.records import output_prefix
from sparkube.spark.watch import Progress

RUNS_DIR = "sparkube-runs"


def new_job_id(prefix: str, *, now: datetime | None = None) -> str:
    """``wc-20261125-1203-4f2a``: sortable by time, unique enough per user."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M")
    return f"{prefix}-{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Placement:
    local: bool
    reason: str


def choose_placement(env: Environment, cluster: str, *, local_flag: bool) -> Placement:
    if local_flag:
        return Placement(True, "--local")
    kubeconfig = env.cluster_dir(cluster) / "kubeconfig"
    if not kubeconfig.exists():
        return Placement(True, f"No cluster {cluster} is up; running on embedded Spark instead.")
    return Placement(False, f"Running on cluster {cluster}.")


@dataclass(frozen=True)
class WordCountResult:
    job_id: str
    words: int
    distinct: int
    top: list[tuple[str, int]]
    seconds: float
    output_dir: Path
    csv: Path
    inputs: list[InputFile]


def _result(
    summary: Mapping[str, object],
    job_id: str,
    started: float,
    output_dir: Path,
    files: Sequence[InputFile],
) -> WordCountResult:
    """The result of a run from the app's summary line (same locally and on a cluster)."""
    top_rows = summary.get("top", [])
    words = summary.get("words", 0)
    distinct = summary.get("distinct", 0)
    assert isinstance(top_rows, list) and isinstance(words, int) and isinstance(distinct, int)
    return WordCountResult(
        job_id=job_id,
        words=words,
        distinct=distinct,
        top=[(str(w), int(c)) for w, c in top_rows],
        seconds=time.monotonic() - started,
        output_dir=output_dir,
        csv=output_dir / wordcount_app.RESULT_FILE,
        inputs=list(files),
    )


def prepare_wordcount(
    inputs: Sequence[Path], *, top: int, output_dir: Path | None, env: Environment, job_id: str
) -> tuple[list[InputFile], Path, Path | None]:
    """Validate everything a word count needs before starting Spark (exit-2 errors).

    Returns the input files, the output folder (created), and the outermost folder this
    call created (``None`` if it existed), which a failed run removes again if empty.
    """
    if top < 1:
        raise InputError(f"--top must be at least 1 (got {top}); pass e.g. --top 20.")
    out = output_dir if output_dir is not None else env.cwd / RUNS_DIR / job_id
    out = out if out.is_absolute() else env.cwd / out
    check_output_dir(out)
    files = resolve_inputs(p if p.is_absolute() else env.cwd / p for p in inputs)
    created = make_output_dir(out)
    return files, out, created


def _clean_after_failure(output_dir: Path, parts_name: str, created: Path | None) -> None:
    """Leave nothing behind a job that failed or was interrupted: its part files, and the
    folders sparkube created for it if they are empty (never a folder of the user's)."""
    shutil.rmtree(output_dir / parts_name, ignore_errors=True)
    _remove_empty(output_dir, created)


def _remove_empty(folder: Path, created: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``created`` (what sparkube made), each
    only if empty; nothing when sparkube created none of them."""
    if created is None:
        return
    for each in (folder, *folder.parents):
        with contextlib.suppress(OSError):
            each.rmdir()  # only succeeds when empty
        if each == created:
            break


def make_output_dir(path: Path) -> Path | None:
    """Create ``path``; return the outermost folder created, or None if it existed."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"Output directory {path} cannot be created ({exc.strerror}); choose another "
            "--output-dir."
        ) from None
    return missing[-1] if missing else None


def stage_inputs(files: Sequence[InputFile], folder: Path) -> str:
    """Give Spark every input under a name it cannot misread.

    Hadoop's file listing skips names starting with ``_`` or ``.`` (even when named
    explicitly), reads ``:`` as a URI scheme and ``[*?{`` as glob syntax, and picks a
    codec by extension. Symbolic links named ``input-NNNNN.txt`` (or ``.gz`` for gzip)
    in a private folder avoid all of that: every file the user named is read as text.
    The folder itself is the job's one input argument, so any number of files fits on
    the command line.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for index, file in enumerate(files):
        link = folder / f"input-{index:06d}{'.gz' if file.compressed else '.txt'}"
        link.symlink_to(file.path)
    return str(folder)


def wordcount_of_nothing(
    files: Sequence[InputFile], *, output_dir: Path, job_id: str
) -> WordCountResult | None:
    """The result for inputs that are all empty files, without Spark (None otherwise):
    a header-only wordcount.csv, as a Spark run would write."""
    if any(f.size for f in files):
        return None
    started = time.monotonic()
    make_output_dir(output_dir)
    (output_dir / wordcount_app.RESULT_FILE).write_bytes(wordcount_app.HEADER.encode())
    return _result({"words": 0, "distinct": 0, "top": []}, job_id, started, output_dir, files)


def run_wordcount_local(
    files: Sequence[InputFile],
    *,
    output_dir: Path,
    top: int,
    job_id: str,
    environ: Mapping[str, str],
    settings: local.LocalSettings,
    on_line: local.LineHandler | None = None,
    created: Path | None = None,
) -> WordCountResult:
    """Run the built-in WordCount on embedded Spark. ``created`` is the folder that
    :func:`prepare_wordcount` made, removed again (if empty) when the job fails."""
    started = time.monotonic()
    make_output_dir(output_dir)
    parts_name = f"_sparkube-parts-{job_id}"
    if (output_dir / parts_name).exists():
        raise InputError(
            f"{output_dir / parts_name} already exists; remove it or choose another --output-dir."
        )
    try:
        with tempfile.TemporaryDirectory(prefix="sparkube-inputs-") as staging:
            result = local.run_local_app(
                local.app_path("wordcount"),
                [
                    "--output", str(output_dir), "--top", str(top), "--parts-name", parts_name,
                    stage_inputs(files, Path(staging)),
                ],
                environ=environ,
                settings=settings,
                on_line=on_line,
                rerun_safe=True,
            )  # fmt: skip
    except BaseException:
        _clean_after_failure(output_dir, parts_name, created)
        raise
    summary = local.parse_summary(result.stdout_tail)
    if result.exit_code != 0 or summary is None:
        _clean_after_failure(output_dir, parts_name, created)
    if result.exit_code != 0 and result.out_of_memory:
        raise JobError(
            f"Spark ran out of memory (driver memory {settings.driver_memory}); pass "
            f"--driver-memory {local.larger_memory(settings.driver_memory)} or split very "
            "long lines.",
            detail="\n".join(result.stderr_tail[-10:]) or None,
        )
    if result.exit_code != 0 or summary is None:
        raise JobError(
            f"WordCount failed on embedded Spark (exit code {result.exit_code}); run again with "
            "--verbose to see Spark's log.",
            detail="\n".join(result.stderr_tail[-15:]) or None,
        )
    return _result(summary, job_id, started, output_dir, files)


#: The local job's log (every line of its stdout and stderr) in its folder.
LOCAL_LOG = "driver.log"


@dataclass(frozen=True)
class LocalSubmitResult:
    exit_code: int
    out_of_memory: bool
    #: Files the application wrote (or changed) under ``$SPARKUBE_OUTPUT``.
    outputs: list[Path]
    output_dir: Path
    #: The job's log, kept when the job failed or ``keep_log`` said so; else None.
    log: Path | None
    stderr_tail: list[str]


def _snapshot(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _remove_checksums(folder: Path, before: Mapping[Path, int]) -> None:
    """Hadoop's local file system writes a ``.NAME.crc`` beside every file Spark writes;
    S3 gets none, so a local run's output folder should not either."""
    for crc in folder.rglob(".*.crc"):
        if crc not in before and (crc.parent / crc.name[1:-4]).exists():
            crc.unlink(missing_ok=True)


def run_submit_local(
    app: Path,
    args: Sequence[str],
    *,
    environ: Mapping[str, str],
    settings: local.LocalSettings,
    job_id: str,
    cwd: Path,
    output_dir: Path | None = None,
    on_line: local.LineHandler | None = None,
    main_class: str | None = None,
    keep_log: Callable[[], bool] = lambda: False,
    python_path: Sequence[str] = (),
) -> LocalSubmitResult:
    """Run a user's application on embedded Spark as it would run on the cluster.

    ``$SPARKUBE_OUTPUT`` is a local folder: ``output_dir`` (``--output-dir``), else the
    job's folder ``./sparkube-runs/JOB-ID/``, which is removed again if nothing was
    written there. Every output line goes to the job's log, ``driver.log`` in the job's
    folder, kept when the job failed or ``keep_log()`` (the CLI hid lines) is true."""
    check_application(app, main_class)
    job_dir = cwd / RUNS_DIR / job_id
    out = output_dir if output_dir is not None else job_dir
    out = out if out.is_absolute() else cwd / out
    check_output_dir(out)
    created_out = make_output_dir(out)
    created_job = make_output_dir(job_dir)
    log_path = job_dir / LOCAL_LOG
    before = _snapshot(out)
    result: local.LocalResult | None = None
    try:
        result = local.run_local_app(
            app.resolve(),
            list(args),
            environ=environ,
            settings=settings,
            on_line=on_line,
            main_class=main_class,
            cwd=cwd,
            extra_env={
                "SPARKUBE_OUTPUT": f"{out}/",
                **(
                    {"PYTHONPATH": ":".join([*python_path, environ.get("PYTHONPATH", "")])}
                    if python_path
                    else {}
                ),
            },
            log_file=log_path,
        )
    finally:
        _remove_checksums(out, before)
        keep = result is not None and (result.exit_code != 0 or keep_log())
        if not keep:
            log_path.unlink(missing_ok=True)
        _remove_empty(job_dir, created_job)
        _remove_empty(out, created_out)
    written = sorted(
        p for p, mtime in _snapshot(out).items() if p != log_path and before.get(p) != mtime
    ) if out.exists() else []  # fmt: skip
    return LocalSubmitResult(
        exit_code=result.exit_code,
        out_of_memory=result.out_of_memory,
        outputs=written,
        output_dir=out,
        log=log_path if keep else None,
        stderr_tail=result.stderr_tail,
    )


# --------------------------------------------------------------------------- on the cluster


def open_cluster(env: Environment, cluster: str) -> cluster_jobs.ClusterJobs:
    """The cluster's jobs API: its admin kubeconfig, the user's own S3 credentials."""
    from sparkube.aws.session import AwsClients
    from sparkube.kube.client import client_from_kubeconfig

    kubeconfig = env.cluster_dir(cluster) / "kubeconfig"
    if not kubeconfig.is_file():
        raise NoSuchCluster.not_here(cluster, kubeconfig.parent)
    client = client_from_kubeconfig(kubeconfig, timeout=30.0)
    endpoints = Endpoints.from_environ(env.environ)

    def pod_s3(region: str) -> Any:
        from botocore.config import Config

        return AwsClients(env.environ, region).session.client(
            "s3",
            region_name=region,
            endpoint_url=endpoints.s3,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    return cluster_jobs.ClusterJobs(
        client,
        lambda region: AwsClients(env.environ, region).s3,
        endpoints=endpoints,
        pod_s3_for_region=pod_s3,
    )


def open_jobs(env: Environment, cluster: str, region: str | None) -> cluster_jobs.ClusterJobs:
    """For reading a cluster's jobs (``jobs``, ``logs``) from any machine: its API through
    this machine's kubeconfig when there is one, else its bucket alone, found from the
    cluster's name, the region and the account of the user's own AWS credentials (job
    records and driver logs live there; no cluster credential leaves the machine that
    ran ``up``). Jobs not ended then show their last recorded state."""
    kubeconfig = env.cluster_dir(cluster) / "kubeconfig"
    if kubeconfig.is_file():
        return open_cluster(env, cluster)
    from sparkube.aws import storage
    from sparkube.aws.session import AwsClients, configured_region

    where = configured_region(env.environ, region)
    if where is None:
        raise NoSuchCluster.not_here(cluster, kubeconfig.parent)
    clients = AwsClients(env.environ, where)
    bucket = storage.bucket_name(cluster, where, clients.account_id())
    if not storage.exists(clients.s3, bucket):
        raise NoSuchCluster.in_region(cluster, where)
    return cluster_jobs.ClusterJobs.from_bucket(
        clients.s3, ClusterConfig(cluster=cluster, bucket=bucket, region=where)
    )


ProgressHandler = Callable[[str], None]


def upload_inputs(
    api: cluster_jobs.ClusterJobs,
    files: Sequence[tuple[Path, str]],
    on_progress: ProgressHandler | None = None,
) -> list[Upload]:
    """Upload (path, name) pairs content-addressed; report bytes done of the total."""
    total = sum(path.stat().st_size for path, _ in files) or 1
    done = 0
    uploads = []

    def count(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(f"uploading inputs {100 * done / total:.0f}% of {total / 1e6:.1f} MB")

    for path, name in files:
        uploads.append(
            upload_content_addressed(api.s3, api.config().bucket, path, name, on_bytes=count)
        )
    return uploads


def resources_for(
    config: ClusterConfig,
    *,
    executors: int | None = None,
    executor_cores: int | None = None,
    executor_memory: str | None = None,
    driver_memory: str | None = None,
    api: cluster_jobs.ClusterJobs | None = None,
) -> Resources:
    """The job's size on the cluster: the flags, else defaults fitted to the cluster (to
    what its workers have for jobs now, when ``api`` can read the nodes). Without
    ``executors`` the job uses Spark's dynamic allocation: it starts with the executors
    that fit now and has between :data:`DYNAMIC_MIN_EXECUTORS` and as many as the
    workers could hold with the group at its maximum (:func:`executors_at_most`);
    ``--executors N`` is a fixed count."""
    rooms = [(r.free_cpu, r.free_memory) for r in api.job_room()] if api is not None else []
    base = default_resources(config, rooms)
    if executors is not None and executors < 1:
        raise InputError(f"--executors must be at least 1 (got {executors}).")
    if executor_cores is not None and executor_cores < 1:
        raise InputError(f"--executor-cores must be at least 1 (got {executor_cores}).")
    res = Resources(
        executors if executors is not None else base.executors,
        executor_cores if executor_cores is not None else base.executor_cores,
        executor_memory or base.executor_memory,
        driver_memory or base.driver_memory,
    )
    res.memory_mib(res.executor_memory)  # validates the syntax (exit 2)
    res.memory_mib(res.driver_memory)
    if executors is None:
        most = executors_at_most(config, res, rooms)
        start = max(DYNAMIC_MIN_EXECUTORS, min(res.executors, most))
        res = replace(res, executors=start, dynamic=Dynamic(DYNAMIC_MIN_EXECUTORS, most))
    return res


def run_wordcount_cluster(
    api: cluster_jobs.ClusterJobs,
    files: Sequence[InputFile],
    *,
    output_dir: Path,
    top: int,
    job_id: str,
    resources: Resources | None = None,
    on_status: ProgressHandler | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_log: Callable[[str], None] | None = None,
    on_interruption: Callable[[str], None] | None = None,
    created: Path | None = None,
) -> WordCountResult:
    """The built-in WordCount on the cluster: inputs to S3, the same app in the driver
    pod, the sorted parts downloaded and concatenated exactly as the local run does."""
    started = time.monotonic()
    config = api.config()
    res = resources or resources_for(config, api=api)
    parts_name = f"_sparkube-parts-{job_id}"
    api.check_fits(JobSpec(job_id, "wordcount", "wordcount.py", b"", (), res))
    try:
        uploads = upload_inputs(
            api,
            [(f.path, "input.gz" if f.compressed else "input.txt") for f in files],
            on_status,
        )
        out_uri = s3a(config.bucket, output_prefix(job_id))
        args = ["--output", out_uri, "--top", str(top), "--parts-name", parts_name]
        args += [s3a(config.bucket, u.key) for u in uploads]
        spec = JobSpec(
            job_id=job_id,
            app_name="wordcount",
            app_file="wordcount.py",
            app_bytes=local.app_path("wordcount").read_bytes(),
            args=tuple(args),
            resources=res,
            kind="wordcount",
            output_uri=out_uri,
        )
        if on_status:
            on_status("submitting the driver")
        api.submit(spec)
        outcome = api.wait(
            job_id, on_progress=on_progress, on_log=on_log, on_interruption=on_interruption
        )
        if outcome.exit_code != 0:
            raise JobError(
                outcome.diagnosis or f"WordCount failed on the cluster (exit {outcome.exit_code}).",
                exit_code=1,
                detail="\n".join(outcome.log_tail[-15:]) or None,
            )
        summary = local.parse_summary(outcome.log_tail)
        if summary is None:
            raise JobError(
                f"WordCount on the cluster printed no summary; see sparkube logs {job_id}."
            )
        prefix = output_prefix(job_id) + parts_name + "/"
        keys = sorted(
            k
            for k in list_keys(api.s3, config.bucket, prefix)
            if k.rsplit("/", 1)[-1].startswith("part-")
        )
        if on_status:
            on_status("downloading the result")
        make_output_dir(output_dir)
        concat_objects(
            api.s3,
            config.bucket,
            keys,
            output_dir / wordcount_app.RESULT_FILE,
            wordcount_app.HEADER.encode(),
        )
    except BaseException:
        _clean_after_failure(output_dir, parts_name, created)
        raise
    return _result(summary, job_id, started, output_dir, files)


@dataclass(frozen=True)
class ClusterSubmission:
    spec: JobSpec
    uploads: list[Upload]


def prepare_submit_cluster(
    api: cluster_jobs.ClusterJobs,
    app: Path,
    args: Sequence[str],
    *,
    job_id: str,
    inputs: Sequence[Path] = (),
    main_class: str | None = None,
    resources: Resources | None = None,
    conf: Mapping[str, str] | None = None,
    on_status: ProgressHandler | None = None,
    extras: JobExtras | None = None,
) -> ClusterSubmission:
    """Upload the inputs and build the job; each --input becomes an s3a:// argument
    appended after the application's own arguments, in order. ``extras``: the job's
    files, modules and packages (:mod:`sparkube.spark.bundles`)."""
    check_application(app, main_class)
    config = api.config()
    # a job that could never start is refused before anything is uploaded
    api.check_fits(
        JobSpec(job_id, app.name, app.name, b"", (), resources or resources_for(config, api=api),
                conf=dict(conf or {}))
    )  # fmt: skip
    found = extras.cluster_bundles(api, on_status) if extras is not None else []
    pairs: list[tuple[Path, str]] = []
    layout: list[tuple[Path, list[int]]] = []
    for given in inputs:
        if not given.exists():
            raise InputError(f"Input {given} does not exist; check the path.")
        if given.is_dir():
            members = sorted(p for p in given.rglob("*") if p.is_file())
            layout.append((given, list(range(len(pairs), len(pairs) + len(members)))))
            pairs += [(p, str(p.relative_to(given))) for p in members]
        else:
            layout.append((given, [len(pairs)]))
            pairs.append((given, given.name))
    uploads = upload_inputs(api, pairs, on_status)
    input_uris = []
    for given, indexes in layout:
        if given.is_dir():
            # a folder: its files under one content-addressed tree (copied server-side)
            tree = hashlib.sha256(
                "\n".join(f"{pairs[i][1]}\0{uploads[i].key}" for i in indexes).encode()
            ).hexdigest()
            prefix = f"inputs/tree-{tree}/"
            for i in indexes:
                key = prefix + pairs[i][1]
                if not object_exists(api.s3, config.bucket, key):
                    api.s3.copy_object(
                        Bucket=config.bucket,
                        Key=key,
                        CopySource={"Bucket": config.bucket, "Key": uploads[i].key},
                    )
            input_uris.append(s3a(config.bucket, prefix))
        else:
            input_uris.append(s3a(config.bucket, uploads[indexes[0]].key))
    out_uri = s3a(config.bucket, output_prefix(job_id))
    spec = JobSpec(
        job_id=job_id,
        app_name=app.name,
        app_file=app.name,
        app_bytes=app.read_bytes(),
        args=(*args, *input_uris),
        resources=resources or resources_for(config, api=api),
        main_class=main_class,
        conf=dict(conf or {}),
        kind="submit",
        output_uri=out_uri,
        bundles=tuple(found),
    )
    return ClusterSubmission(spec, uploads)


@dataclass(frozen=True)
class JobExtras:
    """``--files``, ``--py-files``, ``--requirements`` and ``--pip`` of one submit."""

    files: tuple[Path, ...] = ()
    py_files: tuple[Path, ...] = ()
    requirements: Path | None = None
    pip: tuple[str, ...] = ()
    cwd: Path = Path()
    environ: Mapping[str, str] = field(default_factory=dict)

    @functools.cached_property
    def bundled(self) -> list[bundles.Bundle]:
        """The --files and --py-files bundles, read once."""
        return bundles.collect(self.files, self.py_files, self.cwd)

    @functools.cached_property
    def required(self) -> list[str]:
        """The requirements, read once."""
        return packages.requirement_lines(self.requirements, self.pip)

    def checked(self) -> JobExtras:
        """Refuses bad paths and requirements before anything runs (exit 2)."""
        _ = self.bundled, self.required
        return self

    @property
    def cache(self) -> Path:
        home = Path(self.environ.get("HOME") or Path.home())
        return home / ".cache" / "sparkube" / "envs"

    def cluster_bundles(
        self, api: cluster_jobs.ClusterJobs, on_status: ProgressHandler | None = None
    ) -> list[bundles.Bundle]:
        lines = self.required
        kept = api.upload_bundles(self.bundled)
        if not lines:
            return kept
        config = api.config()
        target = packages.Target(config.python_version, packages.machine_of(config.worker_type))
        key = packages.env_key(lines, target)
        earlier = api.env_in_bucket(key)
        if earlier is None and on_status is not None:
            on_status(f"installing {len(lines)} requirement(s) for {target.describe()}")
        env = packages.cluster_bundle(
            lines, target, cache=self.cache, environ=self.environ, in_bucket=earlier
        )
        return [*kept, env if earlier is not None else api.keep_env(key, env)]

    def local_python_path(self) -> list[str]:
        """Folders and archives a local run puts on PYTHONPATH: the installed
        requirements, module archives of --py-files, and the current folder."""
        entries: list[str] = []
        lines = self.required
        if lines:
            entries.append(str(packages.local_folder(lines, cache=self.cache,
                                                     environ=self.environ)))  # fmt: skip
        for bundle in self.bundled:
            if bundle.on_path:
                entries.append(str(self.cwd / bundle.name))
        if self.py_files:
            entries.append(str(self.cwd))
        return entries


def check_application(app: Path, main_class: str | None) -> None:
    if not app.is_file():
        raise InputError(f"Application {app} does not exist; check the path.")
    if app.suffix not in (".py", ".jar"):
        raise InputError(f"Application {app} must be a .py script or a .jar; pass one of those.")
    if app.suffix == ".jar" and not main_class:
        raise InputError(f"{app} is a JAR; pass its main class with --class.")


def download_outputs(api: cluster_jobs.ClusterJobs, job_id: str, output_dir: Path) -> list[Path]:
    config = api.config()
    return download_prefix(api.s3, config.bucket, output_prefix(job_id), output_dir)


def parse_conf(items: Sequence[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--conf {item!r} is not KEY=VALUE; pass e.g. --conf spark.x=1.")
        conf[key.strip()] = value
    return conf
