"""A throw-away generation, registered from the test folder: proof that a new generation needs no engine code.

`ktbench --generation tests.toy_generation:GENERATION run --suite toy` runs its one-scenario suite against
its embedded "toy server" (a Starlette app on 127.0.0.1) or against any URL.  The toy server answers
`GET /hello` with `{"greeting": "hello"}`; started with the fault `rude`, it answers "go away".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ktbench.core.generation import RoleSpec, SuiteSpec, TargetKind
from ktbench.targets.model import BasicCredential, Secret, Target
from simulators.common.host import running_asgi

HERE = Path(__file__).resolve().parent


class ToySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    greeting: str = "hello"         # what the target is expected to say


def toy_app(faults: Sequence[str] = ()) -> Starlette:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"greeting": "go away" if "rude" in faults else "hello"})

    return Starlette(routes=[Route("/hello", hello)])


class ToyGeneration:
    name = "toy"
    title = "Toy protocol"
    validation_kt = None
    kinds = (TargetKind("toy-server", "toy server", "server", settings=ToySettings,
                        roles={"visitor": RoleSpec("visitor", ("basic",), "someone who greets")}),)
    suites = (SuiteSpec(name="toy", title="toy server", kind="toy-server", steps_package="tests.toy_generation.steps",
                        features=HERE / "features", catalogue=HERE / "features" / "requirements.toml"),)

    def default_roles(self, kind: str) -> dict:
        return {"visitor": BasicCredential(role="visitor", app_id="visitor", password=Secret("toy-visitor-secret"))}

    def target_for_url(self, url: str, kind: str, name: str | None = None) -> Target:
        return Target(name=name or "toy", kind=kind, url=url, settings=ToySettings(),
                      roles=self.default_roles(kind))

    @contextmanager
    def embedded(self, suite: SuiteSpec, *, faults: Sequence[str] = (), workdir: Path) -> Iterator[Target]:
        with running_asgi(toy_app(faults), name="toy") as server:
            yield self.target_for_url(server.url, suite.kind, name="embedded-toy").model_copy(
                update={"embedded": True})


GENERATION = ToyGeneration()
