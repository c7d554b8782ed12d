"""More apps like the demo's, for sweeping many at once (the concurrency test, the benchmark).

Each copy shares the demo's GitHub repository and has its own Fly apps (production and
staging), made in the sandbox as the demo's are.
"""

from __future__ import annotations

from deployments.models import App


def clone_demo_app(world, name: str) -> App:
    """A copy of the demo app (which must be seeded) named ``name``; its environments run on
    the Fly apps ``name`` and ``name-staging`` in ``world`` (a sandbox World)."""
    demo_app = App.objects.get(name="hot-dash")
    environments = list(demo_app.environments.exclude(kind="preview"))
    app = App.objects.get(pk=demo_app.pk)
    app.pk, app.name = None, name
    app.save()
    for env in environments:
        env.pk, env.app = None, app
        env.fly_app_name = name if env.kind == "production" else f"{name}-{env.name}"
        env.save()
        with world.lock:
            world.fly.add_demo_app(env.fly_app_name, env.name)
    return app


def make_apps(world, count: int, *, prefix: str = "app") -> list[App]:
    return [clone_demo_app(world, f"{prefix}-{index:02d}") for index in range(1, count + 1)]
