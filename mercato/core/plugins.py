"""Building the plugin manager, and a typed face for calling hooks.

Built-ins are ordinary plugins listed by module name in :data:`BUILTIN_PLUGINS` and loaded
exactly like third-party ones; their id is the module's last name. Third-party plugins are
entry points of group ``mercato`` whose name is the plugin id. Nothing here runs at import
time: :func:`build_plugin_manager` makes a fresh manager for every site (and test).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import pluggy
import structlog

from mercato.core import hookspecs
from mercato.core.settings import CONFIG_FILENAME, ConfigError, plugin_config_error

if TYPE_CHECKING:
    from types import ModuleType

    from mercato.core.settings import Settings

ENTRY_POINT_GROUP = "mercato"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "mercato.core.health",
    "mercato.core.accounts.plugin",
    "mercato.core.catalog.plugin",
    "mercato.core.contracts.plugin",
    "mercato.core.reputation.plugin",
    "mercato.core.ledger.plugin",
    "mercato.core.payments.plugin",
    "mercato.core.timers.plugin",
    "mercato.core.socket",
    "mercato.core.projects.plugin",
    "mercato.core.listings.plugin",
    "mercato.core.discovery.plugin",
    "mercato.core.moderation.plugin",
    "mercato.plugins.pages",
    "mercato.plugins.password_auth",
    "mercato.plugins.local_storage",
    "mercato.plugins.dev_mailbox",
    "mercato.plugins.github_auth",
    "mercato.plugins.google_auth",
    "mercato.plugins.oidc_auth",
    "mercato.plugins.search_sql",
    "mercato.plugins.sandbox_payments",
    "mercato.plugins.disputes",
    "mercato.plugins.notifications",
    "mercato.plugins.chat",
    "mercato.plugins.admin",
    "mercato.plugins.recommendations",
    "mercato.plugins.semantic_recommendations",
    "mercato.plugins.reviews",
)
"""Module names of the built-in plugins, in registration order."""

log = structlog.get_logger("mercato.plugins")
T = TypeVar("T")


class PluginError(Exception):
    """A plugin could not be loaded; the message names it and says what went wrong."""


def builtin_id(module_name: str) -> str:
    """``mercato.plugins.pages`` → ``pages``; ``mercato.core.accounts.plugin`` → ``accounts``."""
    parts = module_name.split(".")
    return parts[-2] if parts[-1] == "plugin" else parts[-1]


def build_plugin_manager(
    settings: Settings,
    *,
    builtins: Iterable[str] = BUILTIN_PLUGINS,
    extra: Iterable[tuple[str, object]] = (),
) -> pluggy.PluginManager:
    """Make a plugin manager for ``settings``.

    Order: hookspecs → built-ins → block disabled ids → entry points → ``extra`` (plugin
    objects given directly, e.g. by tests) → ``check_pending()``.
    """
    pm = pluggy.PluginManager("mercato")
    pm.add_hookspecs(hookspecs)
    disabled = set(settings.plugins.disabled)
    for module_name in builtins:
        plugin_id = builtin_id(module_name)
        if plugin_id in disabled:
            pm.set_blocked(plugin_id)
            continue
        pm.register(_import_plugin(plugin_id, module_name), name=plugin_id)
    for plugin_id in disabled:
        pm.set_blocked(plugin_id)
    if settings.plugins.load_entry_points:
        _load_entry_points(pm)
    for plugin_id, plugin in extra:
        if not pm.is_blocked(plugin_id):
            pm.register(plugin, name=plugin_id)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) if exc.plugin is not None else "?"
        raise PluginError(f"plugin `{name}` implements an unknown hook: {exc}") from None
    if os.environ.get("MERCATO_TRACE_PLUGINS") == "1":
        _enable_tracing(pm)
    return pm


def _import_plugin(plugin_id: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise PluginError(
            f"plugin `{plugin_id}` ({module_name}) failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name):
            continue
        if pm.has_plugin(ep.name):
            dist = f" ({ep.dist.name})" if ep.dist else ""
            raise PluginError(
                f"plugin id `{ep.name}`{dist} is already taken by another plugin: give the "
                "entry point its own name (to replace a built-in, also add the built-in's id "
                "to `[plugins] disabled`)"
            )
        try:
            plugin = ep.load()
        except Exception as exc:
            dist = f" from {ep.dist.name} {ep.dist.version}" if ep.dist else ""
            raise PluginError(
                f"plugin `{ep.name}`{dist} failed to import ({ep.value}): "
                f"{type(exc).__name__}: {exc}. Fix it, uninstall it, or add "
                f'"{ep.name}" to `[plugins] disabled` in mercato.toml'
            ) from exc
        try:
            pm.register(plugin, name=ep.name)
        except ValueError as exc:
            raise PluginError(f"plugin `{ep.name}` could not be registered: {exc}") from None


def _enable_tracing(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        log.info("hook call", hook=hook_name, plugins=[impl.plugin_name for impl in impls])

    def after(
        outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        exc = outcome.exception
        if exc is not None:
            log.info("hook raised", hook=hook_name, error=repr(exc))

    pm.add_hookcall_monitoring(before, after)


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """Hooks may return a value or an awaitable of it."""
    if inspect.isawaitable(value):
        return await value
    return value


def plugin_version(pm: pluggy.PluginManager, plugin: object) -> str:
    """The installed version of the distribution that ships ``plugin``, or ``""``."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return str(dist.version)
    module = inspect.getmodule(plugin)
    top = (module.__name__ if module else "").split(".")[0]
    if top:
        try:
            return importlib.metadata.version(top)
        except importlib.metadata.PackageNotFoundError:
            return ""
    return ""


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """One row per loaded plugin: id, version, builtin flag, the hooks it implements and a note
    (a module's ``UNAVAILABLE``: why a plugin that needs an optional package does nothing)."""
    rows = []
    for plugin_id, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(impl.name for impl in _impls_of(pm, plugin))
        rows.append(
            {
                "id": plugin_id,
                "version": plugin_version(pm, plugin),
                "builtin": getattr(plugin, "__name__", "").startswith("mercato."),
                "hooks": hooks,
                "note": getattr(plugin, "UNAVAILABLE", None),
            }
        )
    return rows


def _impls_of(pm: pluggy.PluginManager, plugin: object) -> Iterable[Any]:
    yield from pm.get_hookcallers(plugin) or ()


class Plugins:
    """A typed wrapper around the plugin manager: one method per hook, keyword calls only."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._settings: dict[str, Any] = {}

    @property
    def loaded(self) -> frozenset[str]:
        """Ids of the plugins that are on (``disputes``, ``sandbox_payments``, …)."""
        return frozenset(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    def _collect(self, results: Iterable[Iterable[T] | None]) -> list[T]:
        items: list[T] = []
        for result in results:
            if result:
                items.extend(result)
        return items

    # -- configuration ----------------------------------------------------
    def validate_plugin_settings(self, settings: Settings) -> None:
        """Convert every ``[plugins.<id>]`` table into the Struct its plugin declared."""
        source = str(settings.site_path / CONFIG_FILENAME)
        schemas: dict[str, type[msgspec.Struct]] = {}
        for declared in self._call("register_settings"):
            schemas.update(declared or {})
        disabled = set(settings.plugins.disabled)
        loaded = {name for name, plugin in self.pm.list_name_plugin() if plugin is not None}
        for plugin_id in settings.plugins.config:
            if plugin_id in disabled:
                continue
            if plugin_id not in loaded:
                raise ConfigError(
                    f"{source}: `[plugins.{plugin_id}]` configures a plugin that is not "
                    f"installed (loaded: {', '.join(sorted(loaded))})"
                )
            if plugin_id not in schemas:
                raise ConfigError(f"{source}: plugin `{plugin_id}` takes no settings; "
                                  f"remove `[plugins.{plugin_id}]`")
        for plugin_id, schema in schemas.items():
            table = settings.plugins.config.get(plugin_id, {})
            try:
                self._settings[plugin_id] = msgspec.convert(table, schema, strict=False)
            except msgspec.ValidationError as exc:
                raise plugin_config_error(plugin_id, exc, source) from None

    def replace_settings(self, plugin_id: str, settings: Any) -> None:
        """Swap ``plugin_id``'s validated settings (admins' overrides stored in the database)."""
        self._settings[plugin_id] = settings

    def settings_for(self, plugin_id: str) -> Any:
        """The validated settings Struct of ``plugin_id`` (see ``register_settings``)."""
        try:
            return self._settings[plugin_id]
        except KeyError:
            raise LookupError(f"plugin `{plugin_id}` declared no settings") from None

    # -- collected lists --------------------------------------------------
    def routes(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_routes", site=site))

    def middleware(self, site: Any) -> list[Any]:
        # pluggy calls the last registered plugin first; reverse into registration order.
        return self._collect(reversed(self._call("register_middleware", site=site)))

    def template_dirs(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_template_dirs", site=site))

    def static_dirs(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_static_dirs", site=site))

    def nav_items(self, site: Any) -> list[Any]:
        by_key = {}
        # pluggy calls the last registered plugin first; reverse so later plugins win.
        for item in self._collect(reversed(self._call("register_nav_items", site=site))):
            by_key[item.key] = item
        return sorted(by_key.values(), key=lambda item: (item.order, item.label))

    def models(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_models", site=site))

    def migrations(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_migrations", site=site))

    def event_handlers(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_event_handlers", site=site))

    def auth_providers(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_auth_providers", site=site))

    def timer_handlers(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_timer_handlers", site=site))

    def notification_channels(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_notification_channels", site=site))

    def socket_handlers(self, site: Any) -> dict[str, Any]:
        handlers: dict[str, Any] = {}
        for handler in self._collect(self._call("register_socket_handlers", site=site)):
            if handler.type in handlers or handler.type == "ping":
                raise PluginError(f"two socket handlers answer {handler.type!r}; message types are unique")
            handlers[handler.type] = handler
        return handlers

    def validate_message(self, site: Any, *, sender_id: Any, conversation_id: Any, body: str) -> list[str]:
        """The reasons plugins give to refuse a chat message (empty: it may be sent)."""
        answers = self._call("validate_message", site=site, sender_id=sender_id,
                             conversation_id=conversation_id, body=body)
        return [str(answer) for answer in answers if answer]

    def payment_gateways(self, site: Any) -> list[Any]:
        return self._collect(self._call("register_payment_gateways", site=site))

    def fee_policy(self, site: Any) -> Any:
        """The fee policy of the first plugin that answers ``get_fee_policy``."""
        policy = self.pm.hook.get_fee_policy(site=site)
        if policy is None:
            raise PluginError("no plugin provides `get_fee_policy`: enable the built-in `payments`")
        return policy

    def storage(self, site: Any) -> Any:
        """The storage of the first plugin that answers ``get_storage``."""
        storage = self.pm.hook.get_storage(site=site)
        if storage is None:
            raise PluginError("no plugin provides `get_storage`: enable the built-in `local_storage`")
        return storage

    def search_backend(self, site: Any) -> Any:
        """The search backend of the first plugin that answers ``get_search_backend``."""
        backend = self.pm.hook.get_search_backend(site=site)
        if backend is None:
            raise PluginError("no plugin provides `get_search_backend`: enable the built-in `search_sql`")
        return backend

    def commands(self) -> list[Any]:
        return self._collect(self._call("register_commands"))

    # -- content ----------------------------------------------------------
    def validate_listing(self, site: Any, listing: dict[str, Any]) -> list[str]:
        """The reasons plugins give for rejecting ``listing`` (empty: it may be saved)."""
        results = self._call("validate_listing", site=site, listing=listing)
        # pluggy returns last-registered first; reverse into registration order.
        return [str(reason) for reason in reversed(results) if reason]

    # -- theme ------------------------------------------------------------
    async def extra_template_vars(
        self, site: Any, request: Any, template_name: str
    ) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        # pluggy returns last-registered first; reverse so later plugins override.
        for result in reversed(
            self.pm.hook.extra_template_vars(site=site, request=request, template_name=template_name)
        ):
            value = await await_me_maybe(result)
            if value:
                merged.update(value)
        return merged

    def prepare_jinja_env(self, site: Any, env: Any) -> None:
        self._call("prepare_jinja_env", site=site, env=env)

    # -- lifecycle --------------------------------------------------------
    async def on_startup(self, site: Any) -> None:
        for impl in reversed(self.pm.hook.on_startup.get_hookimpls()):
            try:
                await _run_impl(impl, site=site)
            except Exception as exc:
                raise PluginError(
                    f"plugin `{impl.plugin_name}` failed in `on_startup`: {type(exc).__name__}: {exc}"
                ) from exc

    async def on_shutdown(self, site: Any) -> None:
        for impl in reversed(self.pm.hook.on_shutdown.get_hookimpls()):
            try:
                await _run_impl(impl, site=site)
            except Exception:  # one failing plugin must not keep the others from cleaning up
                log.exception("on_shutdown hook failed", plugin=impl.plugin_name)

    async def seed_demo_data(self, site: Any) -> None:
        """Let each plugin add its demo data, in registration order (built-ins first)."""
        for impl in self.pm.hook.seed_demo_data.get_hookimpls():
            try:
                await _run_impl(impl, site=site)
            except Exception as exc:
                raise PluginError(
                    f"plugin `{impl.plugin_name}` failed in `seed_demo_data`: {type(exc).__name__}: {exc}"
                ) from exc

    def recommender(self, site: Any) -> Any:
        recommender = self.pm.hook.get_recommender(site=site)
        if recommender is None:
            raise PluginError("no plugin provides `get_recommender`: enable the built-in `recommendations`")
        return recommender

    def report_subjects(self, site: Any) -> dict[str, Any]:
        """Reportable kinds of content by ``kind``; two plugins claiming one kind is an error."""
        subjects: dict[str, Any] = {}
        for subject in self._collect(self._call("register_report_subjects", site=site)):
            if subject.kind in subjects:
                raise PluginError(f"two plugins register the report subject `{subject.kind}`")
            subjects[subject.kind] = subject
        return subjects

    async def presence_changed(self, site: Any, user_id: Any, online: bool) -> None:
        for impl in self.pm.hook.on_presence_changed.get_hookimpls():
            try:
                await _run_impl(impl, site=site, user_id=user_id, online=online)
            except Exception:  # presence is a courtesy: it never breaks a socket
                log.exception("on_presence_changed hook failed", plugin=impl.plugin_name)

    def _call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a hook; an exception becomes a :class:`PluginError` naming the plugin."""
        caller = getattr(self.pm.hook, hook_name)
        try:
            return list(caller(**kwargs))
        except Exception as exc:
            raise PluginError(
                f"plugin `{_culprit(caller, exc)}` failed in `{hook_name}`: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


async def _run_impl(impl: pluggy.HookImpl, **available: Any) -> None:
    """Call one implementation with the arguments it asks for, awaiting it if async."""
    await await_me_maybe(impl.function(**{name: available[name] for name in impl.argnames}))


def _culprit(caller: Any, exc: BaseException) -> str:
    """The plugin whose implementation is deepest in the traceback."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name
             for impl in caller.get_hookimpls()}
    culprit = "?"
    tb = exc.__traceback__
    while tb is not None:
        culprit = codes.get(tb.tb_frame.f_code, culprit)
        tb = tb.tb_next
    return culprit
