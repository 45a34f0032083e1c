"""oncely: a distributed cron and job scheduler where every fire runs once.

import oncely

app = oncely.App("sqlite:///oncely.db")

@app.task("send-report")
def send_report(ctx: oncely.TaskContext) -> None:
    ...

app.add_job("daily report", cron="0 9 * * MON-FRI", timezone="Europe/Paris",
            task="send-report")
app.run()
"""

from oncely.app import App
from oncely.client import ApiError, AsyncClient, Client
from oncely.config import Settings, load_settings
from oncely.domain.errors import Conflict, InvalidInput, NotFound, OncelyError, PermissionDenied
from oncely.domain.jobs import Job
from oncely.domain.policy import Policy
from oncely.domain.runs import Attempt, AttemptOutcome, Run, RunState
from oncely.runtime.tasks import TaskContext

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "App",
    "AsyncClient",
    "Attempt",
    "AttemptOutcome",
    "Client",
    "Conflict",
    "InvalidInput",
    "Job",
    "NotFound",
    "OncelyError",
    "PermissionDenied",
    "Policy",
    "Run",
    "RunState",
    "Settings",
    "TaskContext",
    "__version__",
    "load_settings",
]
