"""``seismo doctor``: one line per dependency and per configured poller source: ok, or what to do."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from seismo.settings import Settings

if TYPE_CHECKING:
    from producers.checks import CheckResult


def run_doctor(settings: Settings, console: Console, config: Path | None = None) -> bool:
    """Print the checks; return True when every required one passes.  Blocks ~ a few seconds.

    With ``config`` (a poller config file), also checks every source it configures
    (:mod:`producers.checks`: credentials, scopes, reachability); a failing source fails the doctor.
    """
    from seismo.cliutil import safe_url
    from seismo.local.kafka import broker_answers, jars_dir
    from seismo.local.redis import redis_answers
    from seismo.preflight import kafka_fix, mask_rules_problem, redis_fix

    ok = True

    def line(good: bool, name: str, detail: str, required: bool = True) -> None:
        nonlocal ok
        mark = "[green]ok[/green]  " if good else ("[red]FAIL[/red]" if required else "[yellow]warn[/yellow]")
        console.print(f"{mark} {name:<8} {escape(detail)}", soft_wrap=True)
        ok = ok and (good or not required)

    kafka = broker_answers(settings.bootstrap, timeout=3.0)
    line(kafka, "kafka", f"{settings.bootstrap} " + ("answers" if kafka else
         f"does not answer: {kafka_fix(settings)}"))
    redis_ok = redis_answers(settings.redis)
    redis_url = safe_url(settings.redis)
    if settings.state_backend == "redis":
        line(redis_ok, "redis", f"{redis_url} " + ("answers" if redis_ok else
             f"does not answer, and SEISMO_STATE_BACKEND is redis: {redis_fix(settings)}"))
    else:
        line(redis_ok, "redis", f"{redis_url} " + ("answers" if redis_ok else
             "does not answer (state is kept in memory, SEISMO_STATE_BACKEND=memory; the template "
             "cache runs without it)"), required=False)
    if settings.mask_rules_file is not None:
        problem = mask_rules_problem(settings.mask_rules_file)
        line(problem is None, "masks", problem or f"{settings.mask_rules_file} loads")
    if not settings.kafka_bootstrap:
        java, mvn = shutil.which("java"), shutil.which("mvn")
        line(java is not None, "java", java or "missing: apt-get install -y openjdk-17-jre-headless")
        cached = jars_dir(settings).is_dir()
        line(cached or mvn is not None, "jars",
             f"cached in {jars_dir(settings)}" if cached else
             (f"will be fetched with {mvn}" if mvn else "mvn missing: apt-get install -y maven"))
    from seismo.native import check as native_check

    native = native_check()
    line(native.active, "native", f"compiled hot modules {native.state}: {native.reason}"
         + ("" if native.active else " (the pure-Python ones run, about a third slower)"), required=False)
    if config is not None:
        for result in _source_checks(config):
            line(result.ok, result.name, result.detail)
    return ok


def _source_checks(config: Path) -> list[CheckResult]:
    from producers.checks import CheckResult, run_checks
    from producers.config import ConfigError, load_config

    try:
        pollers = load_config(config)
    except ConfigError as exc:
        return [CheckResult("config", False, str(exc))]
    results = run_checks(pollers, os.environ)
    return results or [CheckResult("config", False, f"{config} configures no source (sentry, grafana, "
                                                     "kubernetes, cloudwatch)")]
