"""The production deployment files agree with each other and with the code.

No Docker engine runs here, so nothing is built or started: these tests read
docker-compose.yml, the Dockerfile, the Synapse template and the bridge configs
the way an operator following config/deploy/README.md would rely on them.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from config.deploy import render_homeserver
from config.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = REPO / ".." / "shared" / "data" / "compose" / "compose-spec.json"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOY = REPO / "config" / "deploy"
ENV_EXAMPLE = DEPLOY / "grapevine.env.example"
DEPLOY_README = DEPLOY / "README.md"
HOMESERVER = DEPLOY / "homeserver.yaml"
POSTGRES_INIT = DEPLOY / "postgres-init.sh"
BRIDGES = ("whatsapp", "telegram", "signal")
CORE_SERVICES = {"postgres", "synapse", "grapevine"}

VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def variables_in(node: Any) -> set[str]:
    """${VAR} names in a parsed YAML document's keys and values (comments are gone)."""
    if isinstance(node, str):
        return set(VARIABLE.findall(node))
    if isinstance(node, list):
        return set().union(*map(variables_in, node)) if node else set()
    if isinstance(node, dict):
        return variables_in(list(node)) | variables_in(list(node.values()))
    return set()


@cache
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


@cache
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def filled_env() -> dict[str, str]:
    """The env example as an operator fills it in: every empty secret given a value."""
    return {name: value or f"secret-{name.lower()}" for name, value in env_example().items()}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, and $$ for a $."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        value = env.get(name)
        unset = value is None if operator in ("-", "?") else not value
        if unset and operator.endswith("-"):
            return argument
        if unset and operator.endswith("?"):
            raise AssertionError(f"{name} is required: {argument}")
        return value or ""

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", one, text)


def readme_services() -> dict[str, str | None]:
    """Service name -> profile, from the marked list in the deployment README."""
    text = DEPLOY_README.read_text(encoding="utf-8")
    section = text.split("<!-- services:begin -->")[1].split("<!-- services:end -->")[0]
    listed: dict[str, str | None] = {}
    for line in section.splitlines():
        item = re.match(r"- `([a-z0-9-]+)`(?: \(profile `([a-z0-9-]+)`\))?:", line)
        if item:
            listed[item.group(1)] = item.group(2)
    return listed


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def bridge_example(bridge: str) -> dict[str, Any]:
    path = REPO / "bridges" / "deploy" / bridge / "config.example.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


# --- docker-compose.yml --------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    assert COMPOSE_SCHEMA.is_file(), f"the Compose schema is missing: {COMPOSE_SCHEMA}"
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(compose())


def test_the_compose_schema_catches_a_misspelt_key() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose()))
    broken["services"]["grapevine"]["depend_on"] = ["postgres"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_compose_runs_exactly_the_services_the_deployment_readme_lists() -> None:
    listed = readme_services()
    assert set(listed) == set(services())
    for name, profile in listed.items():
        assert services()[name].get("profiles", []) == ([profile] if profile else []), name


def test_bridges_start_only_when_their_profile_is_named() -> None:
    for bridge in BRIDGES:
        assert services()[f"mautrix-{bridge}"]["profiles"] == [bridge]
    profiled = {name for name, spec in services().items() if spec.get("profiles")}
    assert profiled == {f"mautrix-{bridge}" for bridge in BRIDGES}
    # `docker compose up -d` without profiles must not need a bridge.
    for name in CORE_SERVICES:
        assert not set(services()[name].get("depends_on", {})) & profiled, name


def test_every_depends_on_names_a_real_service_and_waits_for_health() -> None:
    for name, spec in services().items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            assert dependency != name
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(services()["grapevine"]["depends_on"]) == {"postgres", "synapse"}


def test_every_long_running_service_restarts_has_a_healthcheck_and_bounded_logs() -> None:
    for name, spec in services().items():
        assert spec.get("restart") == "unless-stopped", name
        assert spec["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert spec["logging"]["options"]["max-size"], name
        assert int(spec["logging"]["options"]["max-file"]) > 0, name


def test_grapevine_checks_its_health_endpoint_and_keeps_data_in_a_named_volume() -> None:
    bot = services()["grapevine"]
    assert any("/health" in part for part in bot["healthcheck"]["test"])
    assert "grapevine-data:/data" in bot["volumes"]
    for volume in (v.split(":")[0] for spec in services().values() for v in spec["volumes"]):
        assert volume.startswith("./") or volume in compose()["volumes"], volume


def test_postgres_is_never_reachable_from_outside() -> None:
    postgres = services()["postgres"]
    assert "ports" not in postgres and "network_mode" not in postgres
    for network in postgres["networks"]:
        assert compose()["networks"][network].get("internal") is True, network
    # What is published at all goes to loopback, for the reverse proxy, unless .env says otherwise.
    rendered = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), filled_env()))
    for name, spec in rendered["services"].items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every address"


def test_every_variable_compose_uses_is_documented_in_the_env_example() -> None:
    used = variables_in(compose())
    documented = set(env_example())
    assert used - documented == set(), "used in docker-compose.yml, missing from the example"
    assert documented - used == set(), "in the env example but used nowhere"


def test_compose_interpolates_with_a_filled_in_env_file() -> None:
    rendered = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), filled_env()))
    bot_env = rendered["services"]["grapevine"]["environment"]
    assert bot_env["GRAPEVINE_MATRIX__USER_ID"] == "@grapevine:example.org"
    assert rendered["services"]["synapse"]["ports"] == ["127.0.0.1:8008:8008"]


def test_an_empty_secret_stops_compose_with_its_name() -> None:
    env = filled_env() | {"SYNAPSE_DB_PASSWORD": ""}
    with pytest.raises(AssertionError, match="SYNAPSE_DB_PASSWORD"):
        interpolate(COMPOSE.read_text(encoding="utf-8"), env)


def test_every_database_a_service_connects_to_is_created_by_the_init_script() -> None:
    uri = r"postgres(?:ql\+asyncpg)?://([a-z_]+):[^@]+@postgres(?::5432)?/([a-z_]+)"
    wanted = dict(re.findall(uri, COMPOSE.read_text(encoding="utf-8")))
    template = yaml.safe_load(HOMESERVER.read_text(encoding="utf-8"))
    wanted[template["database"]["args"]["user"]] = template["database"]["args"]["dbname"]
    # The script makes a role and a database of the same name for each `create` line.
    created = set(re.findall(r"^create ([a-z_]+) ", POSTGRES_INIT.read_text(), re.M))

    assert set(wanted) == {"synapse", "grapevine", *(f"mautrix_{b}" for b in BRIDGES)}
    for role, database in wanted.items():
        assert role == database and database in created, role
    # The postgres image runs the script once, mounted into its init directory.
    init_dir = ":/docker-entrypoint-initdb.d/"
    mounts = services()["postgres"]["volumes"]
    assert any(m.startswith(f"./config/deploy/postgres-init.sh{init_dir}") for m in mounts)


def test_synapse_database_gets_the_c_collation_synapse_requires() -> None:
    lines = POSTGRES_INIT.read_text().splitlines()
    line = next(line for line in lines if line.startswith("create synapse "))
    assert "LC_COLLATE 'C'" in line and "LC_CTYPE 'C'" in line
    assert "TEMPLATE template0" in POSTGRES_INIT.read_text()
    assert POSTGRES_INIT.stat().st_mode & stat.S_IXUSR


# --- Dockerfile ------------------------------------------------------------------------


def test_the_bot_image_is_built_from_this_repository_and_never_pulled() -> None:
    bot = services()["grapevine"]
    assert bot["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert bot["pull_policy"] == "build"


def test_dockerfile_runs_the_console_script_that_pyproject_installs() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    stage = dict(final_stage())
    entrypoint = json.loads(stage["ENTRYPOINT"])
    assert entrypoint == ["grapevine"] and "grapevine" in scripts
    assert json.loads(stage["CMD"]) == ["run", "-c", "/data/grapevine.toml"]
    # compose replaces only the command, keeping the entrypoint, so it too is a subcommand.
    assert services()["grapevine"]["command"][0] == "run"


def test_dockerfile_is_multi_stage_slim_and_runs_as_a_user_with_a_healthcheck() -> None:
    froms = [args for name, args in dockerfile_instructions() if name == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("python:3.11-slim") for f in froms)
    stage = final_stage()
    users = [args for name, args in stage if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(name == "HEALTHCHECK" and "/health" in args for name, args in stage)
    runs = [args for name, args in dockerfile_instructions() if name == "RUN"]
    assert any("pip install ." in args for args in runs)


def dockerignore_regexes() -> list[re.Pattern[str]]:
    """Docker's rules, enough for our file: anchored at the context root, `**/` for any
    depth, `*` within one path segment; a matched directory takes its contents with it."""
    regexes = []
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        assert not pattern.startswith("!"), "exceptions are not modelled by this test"
        parts = re.split(r"(\*\*/|\*|\?)", pattern)
        wildcard = {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}
        regexes.append(re.compile("".join(wildcard.get(p, re.escape(p)) for p in parts)))
    return regexes


def ignored(path: str) -> bool:
    segments = path.split("/")
    prefixes = ["/".join(segments[: i + 1]) for i in range(len(segments))]
    return any(regex.fullmatch(prefix) for regex in dockerignore_regexes() for prefix in prefixes)


def test_dockerignore_keeps_what_pip_install_needs_and_drops_secrets_and_junk() -> None:
    needed = [
        "pyproject.toml",
        "README.md",
        "bot/cli.py",
        "bridges/__init__.py",
        "storage/__init__.py",
        "reach/__init__.py",
        "config/settings.py",
        "config/data/themes.toml",
    ]
    assert [path for path in needed if ignored(path)] == []
    unwanted = [
        ".env",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/test_deploy.py",
        "data/grapevine.db",
        "bot/__pycache__/cli.cpython-311.pyc",
    ]
    assert [path for path in unwanted if not ignored(path)] == []


# --- Synapse ---------------------------------------------------------------------------


def test_homeserver_template_keeps_messages_180_days_and_registration_closed() -> None:
    template = yaml.safe_load(HOMESERVER.read_text(encoding="utf-8"))
    assert template["retention"]["enabled"] is True
    assert template["retention"]["default_policy"]["max_lifetime"] == "180d"
    assert template["retention"]["purge_jobs"]
    assert template["redaction_retention_period"] == "1d"
    assert template["forget_rooms_on_leave"] is True
    assert template["enable_registration"] is False
    assert template["database"]["name"] == "psycopg2"
    assert "override_ratelimit" in HOMESERVER.read_text(encoding="utf-8")


def test_every_variable_the_template_needs_reaches_the_synapse_container() -> None:
    needed = variables_in(yaml.safe_load(HOMESERVER.read_text(encoding="utf-8")))
    given = set(services()["synapse"]["environment"])
    assert needed and needed <= given


def test_synapse_accepts_the_rendered_config(tmp_path: Path) -> None:
    from signedjson.key import generate_signing_key, write_signing_keys
    from synapse.config.homeserver import HomeServerConfig

    bridges = tmp_path / "bridges"
    (bridges / "whatsapp").mkdir(parents=True)
    (bridges / "whatsapp" / "registration.yaml").write_text("id: whatsapp\n")
    (bridges / "signal").mkdir()  # set up but not yet registered
    installed = render_homeserver.install_registrations(bridges, tmp_path / "as", owner=None)
    config = render_homeserver.render(HOMESERVER.read_text(), filled_env(), installed)

    assert config["app_service_config_files"] == [str(tmp_path / "as" / "whatsapp.yaml")]
    assert config["database"]["args"]["password"] == "secret-synapse_db_password"
    # Point the container's /data paths into the test's directory, then let Synapse parse it.
    for key in ("signing_key_path", "media_store_path", "pid_file"):
        config[key] = config[key].replace("/data/", f"{tmp_path}/")
    with open(config["signing_key_path"], "w") as handle:
        write_signing_keys(handle, [generate_signing_key("a")])
    parsed = HomeServerConfig()
    parsed.parse_config_dict(config, config_dir_path=str(tmp_path), data_dir_path=str(tmp_path))

    assert parsed.server.server_name == "example.org"
    assert parsed.retention.retention_enabled
    assert parsed.retention.retention_default_max_lifetime == 180 * 24 * 3600 * 1000
    assert parsed.room.forget_on_leave is True
    assert parsed.registration.enable_registration is False
    assert parsed.appservice.app_service_config_files == config["app_service_config_files"]


def test_render_names_every_unset_variable_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "homeserver.yaml"
    env = {"SYNAPSE_SERVER_NAME": "example.org"}
    with pytest.raises(render_homeserver.MissingVariables) as missing:
        render_homeserver.render(HOMESERVER.read_text(), env, [])
    assert "SYNAPSE_DB_PASSWORD" in missing.value.names
    assert "SYNAPSE_SERVER_NAME" not in missing.value.names
    assert not output.exists()


def test_rendered_config_and_registrations_are_private_files(tmp_path: Path) -> None:
    bridges = tmp_path / "bridges"
    (bridges / "telegram").mkdir(parents=True)
    (bridges / "telegram" / "registration.yaml").write_text("id: telegram\n")
    installed = render_homeserver.install_registrations(bridges, tmp_path / "as", owner=None)
    output = tmp_path / "out" / "homeserver.yaml"
    render_homeserver.write_config({"server_name": "example.org"}, output, owner=None)
    for path in [output, *map(Path, installed)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert yaml.safe_load(output.read_text()) == {"server_name": "example.org"}


def test_a_password_with_yaml_syntax_survives_rendering() -> None:
    env = filled_env() | {"SYNAPSE_DB_PASSWORD": "a: 'b' # \"c\" ${NOT_A_VAR}"}
    config = render_homeserver.render(HOMESERVER.read_text(), env, [])
    assert config["database"]["args"]["password"] == "a: 'b' # \"c\" ${NOT_A_VAR}"


# --- The bot's own settings -------------------------------------------------------------


def test_the_deploy_settings_with_the_compose_environment_pass_check_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), filled_env()))
    image_env = {
        key: value
        for name, args in final_stage()
        if name == "ENV"
        for key, _, value in (pair.partition("=") for pair in args.split())
        if key.startswith("GRAPEVINE_")
    }
    for key, value in {**image_env, **rendered["services"]["grapevine"]["environment"]}.items():
        monkeypatch.setenv(key, str(value))
    target = ":/etc/grapevine/grapevine.toml:ro"
    mounted = next(v for v in services()["grapevine"]["volumes"] if v.endswith(target))
    settings = load_settings(REPO / mounted.split(":")[0])
    settings.require_runtime_secrets()

    assert settings.matrix.user_id == "@grapevine:example.org"
    assert settings.matrix.homeserver == "http://synapse:8008"
    assert settings.database_url.startswith("postgresql+asyncpg://grapevine:")
    assert settings.bot.data_dir == Path("/data")
    assert settings.web.listen.endswith(":8080")
    assert settings.privacy.retention_days == 180


# --- Bridges -------------------------------------------------------------------------------


@pytest.mark.parametrize("bridge", BRIDGES)
def test_bridge_example_relays_and_never_kicks_the_bot(bridge: str) -> None:
    config = bridge_example(bridge)
    assert config["bridge"]["relay"]["enabled"] is True
    assert config["bridge"]["relay"]["admin_only"] is False
    assert config["bridge"]["kick_matrix_users"] is False


@pytest.mark.parametrize("bridge", BRIDGES)
def test_bridge_example_keeps_portals_local_and_history_out(bridge: str) -> None:
    config = bridge_example(bridge)
    assert config["matrix"]["federate_rooms"] is False
    assert config["backfill"]["enabled"] is False
    assert "bridge_notices" not in config["bridge"]  # irrelevant: the bot sends m.text
    assert config["bridge"]["permissions"]["@grapevine:example.org"] == "user"
    assert config["bridge"]["permissions"]["*"] == "block"  # no one else, not even federated users


@pytest.mark.parametrize("bridge", BRIDGES)
def test_bridge_takes_its_deployment_values_from_compose(bridge: str) -> None:
    prefix = bridge_example(bridge)["env_config_prefix"]
    environment = services()[f"mautrix-{bridge}"]["environment"]
    assert environment and all(key.startswith(prefix) for key in environment)
    assert environment[f"{prefix}HOMESERVER__ADDRESS"] == "http://synapse:8008"
    assert f"mautrix-{bridge}-data:/data" in services()[f"mautrix-{bridge}"]["volumes"]
    # Synapse reads the registration the bridge writes into that volume.
    assert f"mautrix-{bridge}-data:/bridges/{bridge}:ro" in services()["synapse"]["volumes"]


@pytest.mark.parametrize("bridge", BRIDGES)
def test_bridge_logs_stay_out_of_its_volume_and_below_debug(bridge: str) -> None:
    logging = bridge_example(bridge)["logging"]
    assert logging["min_level"] == "info"
    assert [writer["type"] for writer in logging["writers"]] == ["stdout"]


def test_display_names_never_fall_back_to_phone_numbers() -> None:
    assert ".Phone" not in bridge_example("whatsapp")["network"]["displayname_template"]
    signal = bridge_example("signal")["network"]
    assert ".PhoneNumber" not in signal["displayname_template"]
    assert signal["number_in_topic"] is False


# --- Data protection templates ----------------------------------------------------------


def test_the_retention_the_privacy_notice_promises_is_what_both_servers_enforce() -> None:
    notice = (DEPLOY / "privacy-notice-template.md").read_text(encoding="utf-8")
    dpia = (DEPLOY / "DPIA-template.md").read_text(encoding="utf-8")
    retention = yaml.safe_load(HOMESERVER.read_text(encoding="utf-8"))["retention"]
    bot = tomllib.loads((DEPLOY / "grapevine.toml").read_text(encoding="utf-8"))

    days = bot["privacy"]["retention_days"]
    assert retention["default_policy"]["max_lifetime"] == f"{days}d"
    # No room may choose to keep messages longer than the notice says.
    assert retention["allowed_lifetime_max"] == f"{days}d"
    assert f"**{days} days**" in notice and f"{days} days" in dpia


def test_the_privacy_notice_tells_members_what_they_can_do_and_what_is_out_of_reach() -> None:
    notice = (DEPLOY / "privacy-notice-template.md").read_text(encoding="utf-8")
    for command in ("!privacy optout", "!privacy export", "!privacy forget"):
        assert f"`{command}`" in notice, command
    assert "never stores what you write" in notice
    assert "copies of messages held by the chat server" in notice
    assert "WhatsApp, Telegram and Signal themselves" in notice


def test_the_dpia_covers_the_sensitive_data_and_the_choices_left_to_the_council() -> None:
    dpia = (DEPLOY / "DPIA-template.md").read_text(encoding="utf-8")
    for needed in (
        "Article 10",
        "Schedule 1",
        "paragraph 18",
        "paragraph 29",
        "Article 9",
        "encrypted at rest",
        "person-level reach graph",
        "Never message text",
        "no count under 5",
        "## 6. Sign-off",
    ):
        assert needed in dpia, needed


def run_entrypoint(
    tmp_path: Path, env: dict[str, str], bridges: Path, command: list[str]
) -> subprocess.CompletedProcess[str]:
    """The synapse service's entrypoint as compose runs it, with its paths moved into tmp."""
    script = REPO / services()["synapse"]["entrypoint"][1].replace("/deploy/", "config/deploy/")
    data = tmp_path / "data"
    options = ["--template", str(HOMESERVER), "--output", str(data / "homeserver.yaml")]
    options += ["--bridges", str(bridges), "--appservices", str(data / "appservices")]
    return subprocess.run(
        [sys.executable, str(script), *options, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_synapse_entrypoint_renders_then_hands_over_to_the_real_command(
    tmp_path: Path,
) -> None:
    bridges = tmp_path / "bridges"
    (bridges / "signal").mkdir(parents=True)
    (bridges / "signal" / "registration.yaml").write_text("id: signal\n")
    started = tmp_path / "started"
    command = [sys.executable, "-c", f"open({str(started)!r}, 'w').write('synapse')"]

    result = run_entrypoint(tmp_path, filled_env(), bridges, command)

    assert result.returncode == 0, result.stderr
    assert started.read_text() == "synapse"
    rendered = yaml.safe_load((tmp_path / "data" / "homeserver.yaml").read_text())
    assert rendered["app_service_config_files"] == [str(tmp_path / "data/appservices/signal.yaml")]
    assert rendered["server_name"] == "example.org"


def test_the_synapse_entrypoint_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    env = filled_env() | {"SYNAPSE_MACAROON_SECRET_KEY": "", "SYNAPSE_FORM_SECRET": ""}
    started = tmp_path / "started"
    command = [sys.executable, "-c", f"open({str(started)!r}, 'w').write('synapse')"]

    result = run_entrypoint(tmp_path, env, tmp_path / "no-bridges", command)

    assert result.returncode == 2
    assert "SYNAPSE_MACAROON_SECRET_KEY" in result.stderr
    assert "SYNAPSE_FORM_SECRET" in result.stderr
    assert not started.exists()
    assert not (tmp_path / "data" / "homeserver.yaml").exists()
