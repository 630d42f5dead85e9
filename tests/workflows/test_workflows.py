"""Offline checks of .github/workflows: actionlint, zizmor, and what a user relies on.

The linters come from .venv-tools (`make tools`), or AMLOPS_TOOLS_BIN; a missing one fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO / ".github" / "workflows"
ZIZMOR_CONFIG = REPO / ".github" / "zizmor.yml"
WORKFLOW_FILES = sorted(WORKFLOWS_DIR.glob("*.y*ml"))

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# A pinned `uses:` line carries the version it stands for, e.g. `@<sha> # v4.2.1`.
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?:\s+#\s*(?P<comment>.*))?$")
VERSION_COMMENT = re.compile(r"^v?\d+(\.\d+)*\b")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
SECRET_WORDS = re.compile(
    r"client[-_]secret|AZURE_CLIENT_SECRET|ARM_CLIENT_SECRET|AZURE_CREDENTIALS|\bcreds\s*:",
    re.I,
)
MIN_TERRAFORM = (1, 5)


# --- helpers ---------------------------------------------------------------------------


def tool(name: str) -> Path:
    """A linter from AMLOPS_TOOLS_BIN (default .venv-tools/bin); fails, never skips."""
    bin_dir = Path(os.environ.get("AMLOPS_TOOLS_BIN") or REPO / ".venv-tools" / "bin")
    path = bin_dir / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{name} not found in {bin_dir}: run `make tools` "
            "(or point AMLOPS_TOOLS_BIN at a bin directory that has it)"
        )
    return path


def run_actionlint(*files: Path) -> subprocess.CompletedProcess:
    # ShellCheck from the same tools venv checks every `run:` script; pyflakes is off
    # (no Python `run:` scripts here), so nothing depends on what is on PATH.
    return subprocess.run(
        [
            str(tool("actionlint")),
            "-no-color",
            "-oneline",
            f"-shellcheck={tool('shellcheck')}",
            "-pyflakes=",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def run_zizmor(*inputs: Path, config: Path = ZIZMOR_CONFIG) -> tuple[int, list[dict], str]:
    """zizmor offline at the default persona; returns exit code, findings, stderr."""
    proc = subprocess.run(
        [
            str(tool("zizmor")),
            "--offline",
            "--no-progress",
            "--format=json",
            f"--config={config}",
            *map(str, inputs),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        findings = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        pytest.fail(f"zizmor printed no JSON (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.returncode, findings, proc.stderr


def where(finding: dict) -> str:
    """`file:line: annotation` of a zizmor finding's first location, for the failure message."""
    try:
        location = finding["locations"][0]
        path = location["symbolic"]["key"]["Local"]["verbatim_path"]
        row = location["concrete"]["location"]["start_point"]["row"] + 1
        return f"{path}:{row}: {location['symbolic'].get('annotation', '')}"
    except (KeyError, IndexError, TypeError):
        return json.dumps(finding.get("locations"))[:300]


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def triggers(workflow: dict) -> dict:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return {name: (spec or {}) for name, spec in on.items()}


def jobs(workflow: dict) -> dict[str, dict]:
    return workflow["jobs"]


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def action(step: dict) -> str:
    """`owner/repo` of a step's `uses:` (lower case), or '' for a `run:` step."""
    uses = step.get("uses", "")
    return uses.split("@", 1)[0].lower()


def runs_deploy(step: dict) -> bool:
    return "scripts/deploy.py" in step.get("run", "")


def is_plan(step: dict) -> bool:
    return "--plan" in step.get("run", "")


def resolve(value: str, job: dict, workflow: dict) -> str:
    """`${{ env.X }}` followed to the job's or workflow's env, for checking where it comes from."""
    match = re.fullmatch(r"\$\{\{\s*env\.(\w+)\s*\}\}", str(value).strip())
    if not match:
        return str(value)
    name = match.group(1)
    env = {**workflow.get("env", {}), **job.get("env", {})}
    assert name in env, f"env.{name} is used but not defined"
    return str(env[name])


def ref_pin_allowed() -> list[str]:
    """`uses:` patterns that .github/zizmor.yml lets through with a tag instead of a SHA."""
    config = yaml.safe_load(ZIZMOR_CONFIG.read_text()) or {}
    policies = (
        config.get("rules", {}).get("unpinned-uses", {}).get("config", {}).get("policies", {})
    )
    return [pattern for pattern, policy in policies.items() if policy != "hash-pin"]


@pytest.fixture(scope="module")
def ci() -> dict:
    return load(WORKFLOWS_DIR / "ci.yml")


@pytest.fixture(scope="module")
def deploy() -> dict:
    return load(WORKFLOWS_DIR / "deploy.yml")


def deploy_jobs(deploy: dict) -> dict[str, dict]:
    """Jobs that change Azure: they run scripts/deploy.py without --plan."""
    return {
        name: job
        for name, job in jobs(deploy).items()
        if any(runs_deploy(s) and not is_plan(s) for s in steps(job))
    }


def job_env_name(job: dict) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


# --- the linters -----------------------------------------------------------------------


def test_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "deploy.yml"}


def test_actionlint_passes():
    proc = run_actionlint(*WORKFLOW_FILES)
    assert proc.returncode == 0, f"actionlint:\n{proc.stdout}{proc.stderr}"


def test_actionlint_reports_a_broken_workflow(tmp_path: Path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on:\n"
        "  push:\n"
        "    branch: main\n"  # not a key of `push`
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    needs: missing\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "      - run: for f in $(ls *.txt); do cat $f; done\n"
    )
    proc = run_actionlint(broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for rule in ("[syntax-check]", "[job-needs]", "[expression]", "[shellcheck]"):
        assert rule in proc.stdout, f"actionlint missed {rule}:\n{proc.stdout}"


def test_zizmor_has_no_findings():
    code, findings, stderr = run_zizmor(REPO / ".github")
    reported = [f"{f['ident']}: {where(f)}" for f in findings if not f["ignored"]]
    assert code == 0 and not reported, f"zizmor (exit {code}): {reported}\n{stderr[-2000:]}"


def test_zizmor_reports_an_insecure_workflow(tmp_path: Path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "insecure.yml").write_text(
        "on:\n"
        "  pull_request_target:\n"
        "  workflow_dispatch:\n"
        "    inputs:\n"
        "      env: {type: string}\n"
        "jobs:\n"
        "  deploy:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
        '      - run: echo "deploying ${{ inputs.env }}"\n'
    )
    code, findings, stderr = run_zizmor(workflows)
    assert code != 0, stderr
    idents = {f["ident"] for f in findings if not f["ignored"]}
    expected = {
        "dangerous-triggers",  # pull_request_target
        "template-injection",  # ${{ inputs.env }} in run:
        "unpinned-uses",  # a tag, not a SHA
        "artipacked",  # checkout keeps the token in .git/config
        "excessive-permissions",  # no permissions: the default token
    }
    assert expected <= idents, f"zizmor reported {sorted(idents)}"


# --- what a user relies on -------------------------------------------------------------


def test_ci_runs_make_test_on_pull_requests_and_main(ci: dict):
    on = triggers(ci)
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    runs = [s["run"].strip() for job in jobs(ci).values() for s in steps(job) if "run" in s]
    assert runs == ["make test"], "ci.yml must run exactly `make test` (it sets itself up)"
    pythons = [
        str(s["with"]["python-version"])
        for job in jobs(ci).values()
        for s in steps(job)
        if action(s) == "actions/setup-python"
    ]
    assert pythons == ["3.11"]


def test_ci_is_read_only(ci: dict):
    assert ci["permissions"] == {}
    for name, job in jobs(ci).items():
        assert job["permissions"] == {"contents": "read"}, name


def test_deploy_triggers(deploy: dict):
    on = triggers(deploy)
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["env"]["type"] == "choice"
    assert inputs["env"]["options"] == ["dev", "prod"]
    assert inputs["stage"]["type"] == "choice"


def test_dispatch_stages_are_deploy_py_stages(deploy: dict):
    from amlops.cli import deploy_parser

    stage_action = next(a for a in deploy_parser()._actions if a.dest == "stage")
    options = triggers(deploy)["workflow_dispatch"]["inputs"]["stage"]["options"]
    # `infra` is the workflow's own: Terraform only.
    unknown = set(options) - {"infra"} - set(stage_action.choices)
    assert not unknown, f"stages deploy.py does not have: {sorted(unknown)}"
    assert "all" in options


def test_no_pull_request_target_anywhere():
    for path in WORKFLOW_FILES:
        assert "pull_request_target" not in triggers(load(path)), path.name


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_job_has_permissions_and_a_timeout(path: Path):
    workflow = load(path)
    assert workflow.get("permissions") == {}, f"{path.name}: top-level `permissions: {{}}`"
    assert "concurrency" in workflow or all("concurrency" in j for j in jobs(workflow).values())
    for name, job in jobs(workflow).items():
        assert isinstance(job.get("permissions"), dict), f"{path.name}:{name}: no permissions"
        assert "write-all" not in str(job["permissions"])
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        assert writes <= {"id-token"}, f"{path.name}:{name} writes {sorted(writes)}"
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int) and 0 < timeout <= 180, f"{path.name}:{name}: timeout"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned(path: Path):
    allowed_tags = ref_pin_allowed()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = USES_LINE.match(line)
        if not match or match["ref"].startswith("./"):
            continue
        ref = match["ref"]
        where = f"{path.name}:{number}: {ref}"
        if SHA_PIN.match(ref):
            comment = match["comment"] or ""
            assert VERSION_COMMENT.match(comment), f"{where}: add `# vX.Y.Z` after the SHA"
        else:
            name = ref.split("@", 1)[0]
            assert any(fnmatchcase(name, p) for p in allowed_tags), (
                f"{where}: pin to a full commit SHA (or allow it in .github/zizmor.yml)"
            )


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_checkout_does_not_keep_the_token(path: Path):
    for name, job in jobs(load(path)).items():
        for step in steps(job):
            if action(step) == "actions/checkout":
                assert step.get("with", {}).get("persist-credentials") is False, name


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_expressions_inside_run_scripts(path: Path):
    """Inputs and event data reach scripts through `env:`, never pasted into the script."""
    for name, job in jobs(load(path)).items():
        for step in steps(job):
            found = EXPRESSION.findall(step.get("run", ""))
            assert not found, f"{path.name}:{name}: pass {found} through `env:`"


def test_azure_auth_is_oidc_only(deploy: dict):
    text = "\n".join(p.read_text() for p in WORKFLOW_FILES)
    assert not SECRET_WORDS.search(text), "no client secret or creds JSON: OIDC only"
    assert "secrets." not in text, "nothing here is secret: ids come from `vars`"
    azure_jobs = 0
    for name, job in jobs(deploy).items():
        env = {**deploy.get("env", {}), **job.get("env", {})}
        if not any("terraform" in s.get("run", "") or runs_deploy(s) for s in steps(job)):
            continue
        azure_jobs += 1
        assert job["permissions"].get("id-token") == "write", name
        for key in ("ARM_CLIENT_ID", "AZURE_CLIENT_ID", "ARM_TENANT_ID", "AZURE_TENANT_ID"):
            assert "vars." in str(env.get(key)), f"{name}: {key} from vars"
        # A federated `az login` expires and cannot refresh: deploy.py fetches its own
        # tokens (auth.github_oidc_credential), so there is no azure/login to go stale.
        assert not any(action(s) == "azure/login" for s in steps(job)), name
    assert azure_jobs == 4  # plan, dev, prod-plan, prod


def test_no_identity_falls_back_to_another(deploy: dict):
    """`vars.AZURE_PLAN_CLIENT_ID || vars.AZURE_CLIENT_ID` handed the deploy identity to
    code a pull request controls. No id expression may have a fallback."""
    for name, job in jobs(deploy).items():
        for key, value in job.get("env", {}).items():
            if key.endswith("_ID"):
                assert "||" not in str(value), f"{name}: {key} = {value}"
    plan = jobs(deploy)["plan"]
    assert plan["env"]["ARM_CLIENT_ID"] == "${{ vars.AZURE_PLAN_CLIENT_ID }}"
    assert plan["env"]["AZURE_CLIENT_ID"] == "${{ vars.AZURE_PLAN_CLIENT_ID }}"
    assert "vars.AZURE_PLAN_CLIENT_ID != ''" in plan["if"]
    # Without a plan identity: a job that requests no token and says why.
    skipped = jobs(deploy)["plan-skipped"]
    assert "vars.AZURE_PLAN_CLIENT_ID == ''" in skipped["if"]
    assert skipped["permissions"] == {}
    (say_why,) = steps(skipped)
    assert "::notice" in say_why["run"] and "AZURE_PLAN_CLIENT_ID is not set" in say_why["run"]


def test_terraform_and_deploy_py_run_as_different_identities(deploy: dict):
    for name in ("dev", "prod"):
        env = jobs(deploy)[name]["env"]
        assert env["ARM_CLIENT_ID"] == "${{ vars.AZURE_TF_CLIENT_ID }}", name
        assert env["AZURE_CLIENT_ID"] == "${{ vars.AZURE_DEPLOY_CLIENT_ID }}", name
        # Terraform grants the deploy stages' roles to the deploy identity (identity.tf).
        principal = env["TF_VAR_deployment_principal_object_id"]
        assert principal == "${{ vars.AZURE_DEPLOY_PRINCIPAL_ID }}", name
    # deploy.py's auth, given what these jobs set, is the refreshing GitHub OIDC credential.
    from amlops.backends.azureml_v1.auth import choose

    job_env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://x/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t",
        "AZURE_CLIENT_ID": "deploy-client",
        "AZURE_TENANT_ID": "tenant",
    }
    assert choose("auto", job_env, az_on_path=True).mode == "github_oidc"


def test_terraform_uses_oidc_and_backend_config_from_vars(deploy: dict):
    for name, job in jobs(deploy).items():
        if not any("terraform" in s.get("run", "") for s in steps(job)):
            continue
        env = {**deploy.get("env", {}), **job.get("env", {})}
        assert env.get("ARM_USE_OIDC") == "true", name
        for key in ("ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID"):
            assert "vars." in str(env.get(key)), f"{name}: {key}"
        runs = [s.get("run", "") for s in steps(job)]
        init = next(r for r in runs if "terraform -chdir=infra init" in r)
        for key in ("resource_group_name", "storage_account_name", "container_name"):
            match = re.search(rf'-backend-config="{key}=\$\{{(\w+)\}}"', init)
            assert match and "vars." in str(env.get(match[1])), f"{name}: {key} from vars"


def test_setup_terraform_is_a_pinned_recent_version(deploy: dict):
    versions = set()
    for job in jobs(deploy).values():
        for step in steps(job):
            if action(step) == "hashicorp/setup-terraform":
                versions.add(resolve(step["with"]["terraform_version"], job, deploy))
    assert len(versions) == 1, versions
    (version,) = versions
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"pin an exact version, not {version!r}"
    assert tuple(map(int, version.split(".")[:2])) >= MIN_TERRAFORM


def test_pull_requests_only_plan(deploy: dict):
    pr_jobs = {n: j for n, j in jobs(deploy).items() if "pull_request" in j.get("if", "")}
    assert set(pr_jobs) == {"plan", "plan-skipped"}
    for name, job in pr_jobs.items():
        runs = "\n".join(s.get("run", "") for s in steps(job))
        assert "apply" not in runs, name
        assert all(is_plan(s) for s in steps(job) if runs_deploy(s)), name
    job = pr_jobs["plan"]
    runs = "\n".join(s.get("run", "") for s in steps(job))
    assert "terraform fmt -check" in runs and "terraform -chdir=infra plan" in runs
    deploys = [s for s in steps(job) if runs_deploy(s)]
    assert deploys and all(is_plan(s) for s in deploys)
    assert '--env "$DEPLOY_ENV"' in deploys[0]["run"] and job["env"]["DEPLOY_ENV"] == "dev"
    assert any(action(s) == "actions/upload-artifact" for s in steps(job))


def test_dev_then_prod_behind_the_prod_environment(deploy: dict):
    by_env = {job["env"]["DEPLOY_ENV"]: (n, job) for n, job in deploy_jobs(deploy).items()}
    assert set(by_env) == {"dev", "prod"}
    dev_name, dev = by_env["dev"]
    prod_name, prod = by_env["prod"]
    # dev's OIDC subject is the branch (refs/heads/main); prod's is environment:prod.
    assert job_env_name(dev) is None
    assert job_env_name(prod) == "prod"
    # dev -> prod-runner (fails without a runner) -> prod-plan -> prod (reviewers).
    all_jobs = jobs(deploy)
    assert all_jobs["prod-runner"]["needs"] == dev_name
    assert "needs.dev.result == 'success'" in all_jobs["prod-runner"]["if"]
    assert "refs/heads/main" in all_jobs["prod-runner"]["if"]
    assert all_jobs["prod-plan"]["needs"] == "prod-runner"
    assert prod["needs"] == "prod-plan"
    assert "refs/heads/main" in dev["if"]
    groups = {dev["concurrency"]["group"], prod["concurrency"]["group"]}
    assert len(groups) == 2, "one concurrency group per environment"
    assert dev["concurrency"]["cancel-in-progress"] is False
    assert prod["concurrency"]["cancel-in-progress"] is False


def test_dev_applies_infra_before_deploying(deploy: dict):
    for name, job in deploy_jobs(deploy).items():
        runs = [s.get("run", "") for s in steps(job)]
        apply = next(i for i, r in enumerate(runs) if "terraform -chdir=infra apply" in r)
        first_deploy = next(i for i, r in enumerate(runs) if "scripts/deploy.py" in r)
        assert apply < first_deploy, name
        assert "amlops-${DEPLOY_ENV}.tfstate" in "\n".join(runs), name
    dev_runs = "\n".join(s.get("run", "") for s in steps(jobs(deploy)["dev"]))
    assert "envs/${DEPLOY_ENV}.tfvars" in dev_runs


def test_prod_reviewers_approve_the_plan_they_saw_and_get_exactly_it(deploy: dict):
    plan, prod = jobs(deploy)["prod-plan"], jobs(deploy)["prod"]
    assert job_env_name(plan) == "prod-plan", "not behind the reviewers: it runs first"
    plan_runs = "\n".join(s.get("run", "") for s in steps(plan))
    assert "-out=tfplan" in plan_runs
    assert "terraform -chdir=infra show -no-color tfplan" in plan_runs
    assert "terraform -chdir=infra apply" not in plan_runs
    assert "envs/${DEPLOY_ENV}.tfvars" in plan_runs
    assert any(runs_deploy(s) and is_plan(s) for s in steps(plan))
    assert "amlops export" in plan_runs
    assert "$GITHUB_STEP_SUMMARY" in plan_runs, "reviewers read the plans on the run page"
    uploads = {s["with"]["name"] for s in steps(plan) if action(s) == "actions/upload-artifact"}
    assert uploads == {"prod-plan", "prod-tfplan"}
    # The apply job plans nothing itself: it applies the downloaded, reviewed plan file.
    prod_runs = "\n".join(s.get("run", "") for s in steps(prod))
    assert "terraform -chdir=infra plan" not in prod_runs
    assert "apply -input=false -lock-timeout=10m ../tfplan-out/tfplan" in prod_runs
    (download,) = [s for s in steps(prod) if action(s) == "actions/download-artifact"]
    assert download["with"]["name"] == "prod-tfplan"
    # The same provider versions as the plan (a saved plan needs them).
    assert ".terraform.lock.hcl" in plan_runs and ".terraform.lock.hcl" in prod_runs


def test_prod_never_falls_back_to_a_github_hosted_runner(deploy: dict, tmp_path: Path):
    for name in ("prod-plan", "prod"):
        assert jobs(deploy)[name]["runs-on"] == "${{ vars.PROD_RUNNER }}", name
    check = jobs(deploy)["prod-runner"]
    assert check["permissions"] == {}
    assert check["env"]["PROD_RUNNER"] == "${{ vars.PROD_RUNNER }}"
    (step,) = steps(check)
    assert "::error" in step["run"] and "self-hosted runner inside the prod VNet" in step["run"]
    script = tmp_path / "check.sh"
    script.write_text(step["run"])
    for value, code in (("", 1), ("prod-vnet", 0)):
        proc = subprocess.run(
            ["bash", "-e", str(script)],
            env={"PATH": os.environ["PATH"], "PROD_RUNNER": value},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == code, (value, proc.stdout, proc.stderr)


def test_the_make_target_the_deploy_jobs_install_with_exists(deploy: dict):
    targets = {
        s["run"].split()[1]
        for job in jobs(deploy).values()
        for s in steps(job)
        if s.get("run", "").startswith("make ")
    }
    assert targets
    for target in targets:
        proc = subprocess.run(
            ["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"make {target}: {proc.stderr}"


# --- whichever backend the env's config names -------------------------------------------


def amlops_commands(job: dict) -> list[list[str]]:
    """The deploy.py and amlops command lines a job runs (continuations joined, output
    redirection dropped), as argument lists after the program."""
    found = []
    for step in steps(job):
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(">")[0])
            for i, word in enumerate(words):
                if word.endswith("scripts/deploy.py") or word.endswith("bin/amlops"):
                    found.append([word.rsplit("/", 1)[-1], *words[i + 1 :]])
    return found


def azure_envs() -> list[str]:
    from amlops.config import load_config

    envs = sorted(p.stem for p in (REPO / "config").glob("*.yml"))
    return [e for e in envs if load_config(e, REPO).workspace.backend != "local"]


@pytest.mark.parametrize("env", azure_envs())
def test_the_deploy_jobs_commands_fit_whichever_backend_the_config_names(
    deploy: dict, env: str, tmp_path: Path
):
    """config/dev-v2.yml is config/dev.yml with `backend: azureml_v2`: a team switching dev to
    v2 runs these same steps. Every deploy.py call parses and its backend options are the
    chosen backend's; every export runs (offline) and its folder is in the job's artifact."""
    from amlops.backends import backend_options
    from amlops.cli import deploy_parser, main
    from amlops.config import load_config

    exported = 0
    for name, job in jobs(deploy).items():
        uploaded = [
            str(s["with"]["path"])
            for s in steps(job)
            if str(s.get("uses", "")).startswith("actions/upload-artifact@")
        ]
        for program, *args in amlops_commands(job):
            args = [
                a.replace("${DEPLOY_ENV}", env).replace("$DEPLOY_ENV", env).replace("$STAGE", "all")
                for a in args
            ]
            if program == "deploy.py":
                parsed = deploy_parser().parse_args([*args, "--root", str(REPO)])
                backend_options(load_config(parsed.env, REPO), parsed)
                continue
            assert args[0] == "export", (name, args)
            out = args[-1]
            assert any(out.startswith(path.rstrip("/") + "/") for path in uploaded), (name, out)
            written = tmp_path / name / out
            assert main([*args[:-1], "--root", str(REPO), str(written)]) == 0, (name, args)
            backend = load_config(env, REPO).workspace.backend
            if backend == "azureml_v2":  # YAML folders, one per pipeline
                assert (written / "train" / "pipeline.yml").is_file()
            else:
                assert (written / "train.v1.json").is_file()
            exported += 1
    assert exported >= 2  # the dev plan and prod-plan jobs at least
