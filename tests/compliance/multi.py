"""More apps like the demo's, for sweeping many at once (the concurrency test, the benchmark).

Each copy shares the demo's GitHub repository and has its own Fly apps (production and
staging), made in the sandbox as the demo's are.
"""

from __future__ import annotations

from collections.abc import Callable

from deployments.models import App


def clone_demo_app(add_fly_app: Callable[[str, str], object], name: str) -> App:
    """A copy of the demo app (which must be seeded) named ``name``; its environments run on
    the Fly apps ``name`` and ``name-staging``, made by ``add_fly_app(fly_name, like)``: a
    sandbox World's ``add_demo_fly_app``, or the control API's ``POST /_sandbox/fly-apps``."""
    demo_app = App.objects.get(name="hot-dash")
    environments = list(demo_app.environments.exclude(kind="preview"))
    app = App.objects.get(pk=demo_app.pk)
    app.pk, app.name = None, name
    app.save()
    for env in environments:
        env.pk, env.app = None, app
        env.fly_app_name = name if env.kind == "production" else f"{name}-{env.name}"
        env.save()
        add_fly_app(env.fly_app_name, env.name)
    return app


def make_apps(add_fly_app: Callable[[str, str], object], count: int) -> list[App]:
    return [clone_demo_app(add_fly_app, f"app-{index:02d}") for index in range(1, count + 1)]
