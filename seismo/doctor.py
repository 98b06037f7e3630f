"""``seismo doctor``: one line per dependency, green or red with what to do."""

from __future__ import annotations

import shutil

from rich.console import Console

from seismo.settings import Settings


def run_doctor(settings: Settings, console: Console) -> bool:
    """Print the checks; return True when every required one passes.  Blocks ~ a few seconds."""
    from seismo.local.kafka import broker_answers, jars_dir
    from seismo.local.redis import redis_answers

    ok = True

    def line(good: bool, name: str, detail: str, required: bool = True) -> None:
        nonlocal ok
        mark = "[green]ok[/green]  " if good else ("[red]FAIL[/red]" if required else "[yellow]warn[/yellow]")
        console.print(f"{mark} {name:<8} {detail}")
        ok = ok and (good or not required)

    kafka = broker_answers(settings.bootstrap, timeout=3.0)
    line(kafka, "kafka", f"{settings.bootstrap} " + ("answers" if kafka else
         "does not answer: `seismo kafka start`, or set SEISMO_KAFKA_BOOTSTRAP"))
    redis_ok = redis_answers(settings.redis)
    line(redis_ok, "redis", f"{settings.redis} " + ("answers" if redis_ok else
         "does not answer: `seismo redis start`, or set SEISMO_REDIS_URL (Seismo runs slower "
         "without it)"), required=False)
    if not settings.kafka_bootstrap:
        java, mvn = shutil.which("java"), shutil.which("mvn")
        line(java is not None, "java", java or "missing: apt-get install -y openjdk-17-jre-headless")
        cached = jars_dir(settings).is_dir()
        line(cached or mvn is not None, "jars",
             f"cached in {jars_dir(settings)}" if cached else
             (f"will be fetched with {mvn}" if mvn else "mvn missing: apt-get install -y maven"))
    return ok
