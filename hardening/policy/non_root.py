"""The image must not run as root: checked on the image config and on the Dockerfile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardening.findings import Finding, Severity
from hardening.policy.interface import DockerfileCheck, DockerfileContext, ImageCheck, ImageContext
from hardening.policy.options import NoOptions

if TYPE_CHECKING:  # the Dockerfile side is loaded by whoever hands a check a Dockerfile
    from hardening.dockerfile import Instruction

ROOT = "HARDEN-USER-ROOT"
UNKNOWN = "HARDEN-USER-UNKNOWN"
DOCKERFILE_ROOT = "HARDEN-USER-DOCKERFILE-ROOT"


def is_root_spec(user: str) -> bool:
    """Whether a USER value names root without needing the image: ``""``, ``0``, ``root``, ``0:x``."""
    name = user.strip().partition(":")[0]
    return name in ("", "0", "root") or (name.isdigit() and int(name) == 0)


class NonRoot(ImageCheck[NoOptions], DockerfileCheck[NoOptions]):
    """The image's user when there is an image; the Dockerfile's last USER in any case (it finds
    ``USER ${RUNAS}`` defaulting to root even when this build overrode the argument)."""

    id = "non_root"
    rules = (
        (ROOT, "The image's configured user resolves to uid 0 (root), or no USER is set."),
        (UNKNOWN, "The image's configured user does not exist in the image's passwd/group."),
        (DOCKERFILE_ROOT, "The final stage's last USER (after ARG/ENV expansion) is root, or absent."),
    )
    default_severity = Severity.HIGH
    options_type = NoOptions

    def check_image(self, ctx: ImageContext[NoOptions]) -> list[Finding]:
        user = ctx.facts.config.user.strip()
        where = ctx.locator.locate_user() if ctx.locator else None
        resolved = ctx.facts.resolve_user(user)
        if resolved is None:
            return [
                ctx.finding(
                    UNKNOWN,
                    f"USER {user!r} does not exist in the image (/etc/passwd, /etc/group): "
                    "the engine cannot start a container as it",
                    title="Configured user does not exist in the image",
                    where=where,
                    properties=(("user", user),),
                )
            ]
        uid, gid = resolved
        if uid != 0:
            return []
        if not user:
            message = "the image sets no USER, so containers run as root (uid 0)"
        else:
            message = f"USER {user} runs containers as root (uid 0, gid {gid})"
        return [
            ctx.finding(
                ROOT,
                message,
                title="Image runs as root",
                where=where,
                properties=(("user", user),),
            )
        ]

    def check_dockerfile(self, ctx: DockerfileContext[NoOptions]) -> list[Finding]:
        dockerfile, locator = ctx.dockerfile, ctx.locator
        if dockerfile.final_stage is None:
            return []
        users: list[Instruction] = [i for i in locator.final_instructions if i.keyword == "USER"]
        if not users:
            if ctx.facts is not None:
                # check_image already judged the inherited user.
                return []
            return [
                ctx.finding(
                    DOCKERFILE_ROOT,
                    f"the final stage ({dockerfile.path}:{dockerfile.final_stage.from_instruction.line}) "
                    "sets no USER and inherits the base image's user (root for the Debian base)",
                    title="Dockerfile final stage runs as root",
                    where=locator.locate_user(),
                )
            ]
        last = users[-1]
        stage = dockerfile.stages[last.stage]
        raw = last.arguments.strip()
        expanded = dockerfile.expand(raw, dockerfile.variables_before(stage, last))
        if not is_root_spec(expanded):
            return []
        via = f" ({raw} expands to {expanded!r} from its ARG/ENV default)" if raw != expanded else ""
        return [
            ctx.finding(
                DOCKERFILE_ROOT,
                f"the final stage's last USER is root{via}",
                title="Dockerfile final stage runs as root",
                where=locator.at(last),
                properties=(("user", expanded),),
            )
        ]
