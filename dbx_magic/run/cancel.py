"""Cancel a run, honestly: a run that already ended is said to have ended, and nothing is sent.

``cancel(client, run_id)`` reads the run first (one ``runs/get``); only a run still going gets a
``runs/cancel``. Every face says the answer with :meth:`CancelAnswer.line`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PYTHON, Face
from .models import RunResult

if TYPE_CHECKING:
    from ..api.client import DatabricksClient

__all__ = ["CancelAnswer", "cancel"]


@dataclass(frozen=True)
class CancelAnswer:
    """What a cancel did.

    Attributes:
        run_id: The run.
        ended: The run as read when it had already ended (nothing was sent); None when the
            workspace was asked to cancel it.
    """

    run_id: int
    ended: RunResult | None = None

    @property
    def sent(self) -> bool:
        """True when the workspace was asked to cancel the run."""
        return self.ended is None

    def line(self, face: Face = PYTHON) -> str:
        """One sentence for a person, the next step named the way ``face`` names it."""
        if self.ended is None:
            wait = face.wait.format(run_id=self.run_id)
            return f"Asked the workspace to cancel run {self.run_id}; {wait} shows it end."
        result = self.ended
        state = result.result_state or result.life_cycle_state or "UNKNOWN"
        return f"Run {self.run_id} already ended {state}: nothing was cancelled."


def cancel(client: DatabricksClient, run_id: int) -> CancelAnswer:
    """Cancel a run that is still going; leave one that ended as it is and say so.

    Cancelling is asynchronous: the run ends a moment later (``wait_for_run`` shows it end).

    Raises:
        DatabricksError: the run cannot be read (a run id the workspace does not know, say) or
            the workspace refused the cancel.
    """
    result = RunResult.from_api(client.get_run(run_id))
    if result.finished:
        return CancelAnswer(run_id, result)
    client.cancel_run(run_id)
    return CancelAnswer(run_id)
